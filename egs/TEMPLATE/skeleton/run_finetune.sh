#!/usr/bin/env bash
# @NAME@: @TASK@ fine-tuning. The stages are egs/TEMPLATE/finetune.sh's (./run.sh --help lists them and
# every option); this file fixes what belongs to the corpus.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
exec ./finetune.sh --task @TASK@ --configs conf/tuning/tiny.yaml "$@"
