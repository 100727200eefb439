#!/usr/bin/env bash
# mSLAM joint pre-training: VoxPopuli unlabeled speech (23 languages), mC4 text (from egs/mc4/text1;
# run it first) and VoxPopuli transcripts as paired data, into one Conformer encoder. The paper adds
# Common Voice, MLS and BABEL, which have no recipe here: list your prepared data dirs in db.sh's
# EXTRA_SPEECH_DIRS and EXTRA_PAIRED_DIRS. The stages are egs/TEMPLATE/pretrain.sh's: ./run.sh --help lists them and every
# option; this file fixes what belongs to the corpora.
#   ./run.sh --stop-stage 4                             # data, vocabulary, CMVN: once
#   ./run.sh --stage 5 --ngpu 8 --nnodes 8 --master-addr node001   # then on each of 8 nodes (README.md)
#   ./run.sh --pretrain-config conf/pretrain_2b.yaml ...  # the 2B model
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
. ./db.sh
exec ./pretrain.sh --pretrain-config conf/pretrain_0.6b.yaml --speech-sets "speech/train $EXTRA_SPEECH_DIRS" \
    --paired-sets "paired/train $EXTRA_PAIRED_DIRS" "$@"
