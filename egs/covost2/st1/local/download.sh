#!/usr/bin/env bash
# CoVoST 2: the Common Voice 4.0 clips of each source language into $COMMONVOICE and the X->En
# translation tables into $COVOST2 (db.sh) (stage 1). Interrupted downloads resume; files already
# complete are not fetched again. Common Voice 4.0 is no longer served by Mozilla's bucket: if its
# download fails, put the release's <lang>.tar.gz (or the extracted <lang>/ folders) under $COMMONVOICE.
#   local/download.sh [--langs "a b"] [--checksums SHA256SUMS]
set -euo pipefail
langs=
checksums=
. ./path.sh
. ./db.sh
. "$MAIN_ROOT/tools/parse_options.sh"
for source in commonvoice covost2; do
    case $source in commonvoice) url=$COMMONVOICE_URL dest=$COMMONVOICE ;; covost2) url=$COVOST2_URL dest=$COVOST2 ;; esac
    python -m mslam.bin.prepare_covost2 files --source $source ${langs:+--langs "${langs// /,}"} |
        python -m mslam.bin.download --base-url "$url" --out "$dest" --list - --no-progress ${checksums:+--checksums "$checksums"}
done
