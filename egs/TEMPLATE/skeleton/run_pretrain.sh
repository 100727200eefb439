#!/usr/bin/env bash
# @NAME@: joint pre-training. The stages are egs/TEMPLATE/pretrain.sh's (./run.sh --help lists them and
# every option); this file fixes what belongs to the corpus.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
exec ./pretrain.sh --pretrain-config conf/tuning/tiny.yaml "$@"
