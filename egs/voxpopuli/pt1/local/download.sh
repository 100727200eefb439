#!/usr/bin/env bash
# mSLAM pre-training data from VoxPopuli: the unlabeled per-language session audio with its segment
# table, and the transcribed sessions (paired speech-text) of the languages that have transcripts, into
# $VOXPOPULI (db.sh) from $VOXPOPULI_URL (stage 1). The text comes from egs/mc4/text1 (run it first).
# Interrupted downloads resume; files already complete are not fetched again.
#   local/download.sh [--langs "a b"] [--years "2019 2020"] [--v2 true] [--checksums SHA256SUMS]
set -euo pipefail
langs=
years=      # default: every year (2009-2020)
v2=false    # also the non-plenary sessions (VoxPopuli's 400k-hour set; the default is the plenary 100k)
checksums=
. ./path.sh
. ./db.sh
. "$MAIN_ROOT/tools/parse_options.sh"
. local/selection.sh
{
    python -m mslam.bin.prepare_voxpopuli files --what unlabelled "${unlabelled[@]}"
    python -m mslam.bin.prepare_voxpopuli files --what asr "${asr[@]}"
} | python -m mslam.bin.download --base-url "$VOXPOPULI_URL" --out "$VOXPOPULI" --list - --no-progress \
        ${checksums:+--checksums "$checksums"}
