#!/usr/bin/env bash
# MINDS-14: one archive of every language: fetch the files of the chosen languages into $MINDS14 (db.sh) from $MINDS14_URL (stage 1). Interrupted
# downloads resume; files already complete are not fetched again.
#   local/download.sh [--langs "a b"] [--checksums SHA256SUMS]
set -euo pipefail
langs=
checksums=
. ./path.sh
. ./db.sh
. "$MAIN_ROOT/tools/parse_options.sh"
python -m mslam.bin.prepare_minds14 files ${langs:+--langs "${langs// /,}"} |
    python -m mslam.bin.download --base-url "$MINDS14_URL" --out "$MINDS14" --list - --no-progress ${checksums:+--checksums "$checksums"}
