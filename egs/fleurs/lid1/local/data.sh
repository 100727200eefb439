#!/usr/bin/env bash
# FLEURS: Kaldi data dirs $data/{train,dev,test} of every chosen language together; the LangID label
# is utt2lang (the FLEURS code, e.g. de_de). Stage 2.
#   local/data.sh [--langs "a b"] --data DIR [--nj N]
# Each language is prepared as a shard (N at a time); a killed run resumes with the languages it had not
# finished (kept in $data.parts until then).
set -euo pipefail
langs=
data=data
nj=4
. ./path.sh
. ./db.sh
. "$MAIN_ROOT/tools/parse_options.sh"
python -m mslam.bin.prepare_fleurs prepare --root "$FLEURS" --out "$data" --nj "$nj" --no-progress \
    ${langs:+--langs "${langs// /,}"}
