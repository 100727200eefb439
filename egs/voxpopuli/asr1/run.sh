#!/usr/bin/env bash
# VoxPopuli multilingual ASR: one RNN-T model over the transcribed languages, WER per language and
# averaged (the paper: average WER over 14 languages 9.2 for mSLAM-CTC 0.6B, 9.1 for 2B).
# The stages are egs/TEMPLATE/finetune.sh's: ./run.sh --help lists them and every option; this file
# fixes what belongs to VoxPopuli.
#   ./run.sh                                                   # everything, from the pre-trained encoder, on every GPU here
#   ./run.sh --langs "de fr" --local-opts "--years 2019,2020" --stop-stage 2   # a small slice of the data
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# The 14 languages XTREME-S evaluates (VoxPopuli's 16 transcribed ones less et and lt).
exec ./finetune.sh --task asr --corpus-name VoxPopuli --langs "en de fr es pl it ro hu cs nl fi hr sk sl" \
    --configs conf/asr_0.6b.yaml --init ../pt1/exp/pretrain "$@"
