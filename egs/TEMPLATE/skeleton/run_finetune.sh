#!/usr/bin/env bash
# @NAME@: @TASK@ fine-tuning. The stages are egs/TEMPLATE/finetune.sh's (./run.sh --help lists them and
# every option); this file fixes what belongs to the corpus.
# First `./run.sh`: every stage with conf/tuning/tiny.yaml, a check that takes seconds. Then the real
# training, once the CHANGE lines of conf/@TASK@.yaml are set (from scratch, or from a pre-trained encoder):
#   ./run.sh --stage 4 --configs conf/@TASK@.yaml
#   ./run.sh --stage 4 --configs conf/@TASK@.yaml --init ../../voxpopuli/pt1/exp/pretrain --tag pretrained
# Training uses every GPU of the machine, or the CPU if it has none (--ngpu auto).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
exec ./finetune.sh --task @TASK@ --corpus-name "@CORPUS@" --configs conf/tuning/tiny.yaml "$@"
