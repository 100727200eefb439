#!/usr/bin/env bash
# @NAME@: fetch the corpus into its db.sh path, $@VAR@ (stage 1). Called as
#   local/download.sh [--langs "a b"] [--checksums FILE]
# A corpus with a download: list its files and pipe them to the download tool, which resumes
# interrupted downloads and skips complete files:
#   printf '%s\n' a.tar.gz b.tsv | python -m mslam.bin.download --base-url "$@VAR@_URL" --out "$@VAR@" --list -
# A corpus already on disk (or behind a login): check that $@VAR@ holds it, and say where to get it if not.
set -euo pipefail
langs=
checksums=
. ./path.sh
. ./db.sh
. "$MAIN_ROOT/tools/parse_options.sh"
echo "local/download.sh: not written yet for this corpus; see egs/TEMPLATE/README.md" >&2
exit 1
