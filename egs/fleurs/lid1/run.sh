#!/usr/bin/env bash
# FLEURS spoken language identification over 102 languages (the paper: accuracy 73.3 for mSLAM-CTC
# 0.6B (unverified), 77.7 for 2B, 71.4 for the speech-only w2v-bert-51). The stages are egs/TEMPLATE/finetune.sh's: ./run.sh --help lists them
# and every option; this file fixes what belongs to FLEURS.
#   ./run.sh                                            # everything, from the pre-trained encoder, on every GPU here
#   ./run.sh --langs "de_de fr_fr" --stop-stage 2       # two languages' data only
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
exec ./finetune.sh --task langid --corpus-name FLEURS --configs conf/langid_0.6b.yaml \
    --init ../../voxpopuli/pt1/exp/pretrain "$@"
