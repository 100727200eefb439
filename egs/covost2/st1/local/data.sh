#!/usr/bin/env bash
# CoVoST 2 X->En: Kaldi data dirs $data/{train,dev,test} (text: the source transcript, text.en: the
# English translation, utt2lang: the Common Voice code) and $data/groups.json, the paper's
# high/mid/low resource groups for the BLEU table. Stage 2.
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
python -m mslam.bin.prepare_covost2 prepare --cv-root "$COMMONVOICE" --covost-root "$COVOST2" --out "$data" \
    --nj "$nj" --no-progress ${langs:+--langs "${langs// /,}"}
python -m mslam.bin.prepare_covost2 groups > "$data/groups.json.tmp" && mv "$data/groups.json.tmp" "$data/groups.json"
