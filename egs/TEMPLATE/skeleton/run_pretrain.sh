#!/usr/bin/env bash
# @NAME@: joint pre-training. The stages are egs/TEMPLATE/pretrain.sh's (./run.sh --help lists them and
# every option); this file fixes what belongs to the corpus.
# First `./run.sh`: every stage with conf/tuning/tiny.yaml, a check that takes seconds. Then the real
# run, once the CHANGE lines of conf/pretrain.yaml are set:
#   ./run.sh --stage 5 --pretrain-config conf/pretrain.yaml --tag mini
# Training uses every GPU of the machine, or the CPU if it has none (--ngpu auto).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
exec ./pretrain.sh --pretrain-config conf/tuning/tiny.yaml "$@"
