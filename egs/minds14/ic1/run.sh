#!/usr/bin/env bash
# MINDS-14 intent classification, 14 intents in 14 language varieties (the paper: accuracy 86.9 for
# mSLAM-CTC 0.6B, 82.7 for the speech-only w2v-bert-51; both unverified). The stages are egs/TEMPLATE/finetune.sh's: ./run.sh --help lists
# them and every option; this file fixes what belongs to MINDS-14.
#   ./run.sh                                            # everything, from the pre-trained encoder, on every GPU here
#   ./run.sh --langs "de-DE fr-FR" --stop-stage 2       # two languages' data only
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
exec ./finetune.sh --task intent --corpus-name MINDS-14 --configs conf/intent_0.6b.yaml \
    --init ../../voxpopuli/pt1/exp/pretrain "$@"
