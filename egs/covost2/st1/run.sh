#!/usr/bin/env bash
# CoVoST 2 X->En speech translation from 21 languages (the paper: BLEU over the high / mid / low
# resource groups and all 21; mSLAM-CTC 0.6B 20.6 all speech-only, 22.4 with joint ST+MT fine-tuning). Two experiments: speech-only
# fine-tuning (st_0.6b) and joint ST+MT fine-tuning (st_joint_0.6b, equal numbers of ST and MT examples
# per step, MT weighted 5.0). The stages are egs/TEMPLATE/finetune.sh's: ./run.sh --help lists them and
# every option; this file fixes what belongs to CoVoST 2.
#   ./run.sh                                            # everything, from the pre-trained encoder, on every GPU here
#   ./run.sh --langs "fr de es" --stop-stage 2          # three languages' data only
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
exec ./finetune.sh --task st --corpus-name "CoVoST 2" --configs "conf/st_0.6b.yaml conf/st_joint_0.6b.yaml" \
    --init ../../voxpopuli/pt1/exp/pretrain "$@"
