#!/usr/bin/env bash
# @NAME@: Kaldi data dirs from the corpus in $@VAR@ (stage 2). Called as
#   local/data.sh [--langs "a b"] --data DIR [--nj N]
# Must write DIR/train, DIR/dev and DIR/test (wav.scp, utt2spk, utt2lang, and the task's targets:
# asr and st text, st text.en, intent utt2intent); stage 2 validates them. Keep the speakers of dev
# and test out of train. Audio: wav, flac, ogg or mp3 files (or `cmd |` pipes), any sample rate.
set -euo pipefail
langs=
data=data
nj=4
. ./path.sh
. ./db.sh
. "$MAIN_ROOT/tools/parse_options.sh"
echo "local/data.sh: not written yet for this corpus; see egs/TEMPLATE/README.md" >&2
exit 1
