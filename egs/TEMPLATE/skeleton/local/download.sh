#!/usr/bin/env bash
# @NAME@: fetch the corpus into its db.sh path (stage 1). Called as
#   local/download.sh [--langs "a b"] [--checksums FILE]
# Typically: list the files of the selected languages and pipe them to the download tool, which resumes
# interrupted downloads and skips complete files:
#   printf '%s\n' a.tar.gz b.tsv | python -m mslam.bin.download --base-url "$MYCORPUS_URL" --out "$MYCORPUS" --list -
set -euo pipefail
langs=
checksums=
. ./path.sh
. ./db.sh
. "$MAIN_ROOT/tools/parse_options.sh"
echo "local/download.sh: not written yet for this corpus; see egs/TEMPLATE/README.md" >&2
exit 1
