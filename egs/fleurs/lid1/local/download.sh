#!/usr/bin/env bash
# FLEURS: audio archives and tables per language: fetch the files of the chosen languages into $FLEURS (db.sh) from $FLEURS_URL (stage 1). Interrupted
# downloads resume; files already complete are not fetched again.
#   local/download.sh [--langs "a b"] [--checksums SHA256SUMS]
set -euo pipefail
langs=
checksums=
. ./path.sh
. ./db.sh
. "$MAIN_ROOT/tools/parse_options.sh"
python -m mslam.bin.prepare_fleurs files ${langs:+--langs "${langs// /,}"} |
    python -m mslam.bin.download --base-url "$FLEURS_URL" --out "$FLEURS" --list - --no-progress ${checksums:+--checksums "$checksums"}
