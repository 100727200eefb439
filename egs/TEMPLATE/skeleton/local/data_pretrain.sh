#!/usr/bin/env bash
# @NAME@: pre-training data from the corpora (stage 2). Called as
#   local/data.sh [--langs "a b"] --data DIR [--nj N]
# Must write DIR/speech/train (unlabeled speech), DIR/paired/train (speech with `text` and `utt2lang`)
# and DIR/text/train/<lang>.txt (one sentence per line); stage 2 validates the data dirs.
set -euo pipefail
langs=
data=data
nj=4
. ./path.sh
. ./db.sh
. "$MAIN_ROOT/tools/parse_options.sh"
echo "local/data.sh: not written yet for this corpus; see egs/TEMPLATE/README.md" >&2
exit 1
