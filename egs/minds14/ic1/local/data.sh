#!/usr/bin/env bash
# MINDS-14: Kaldi data dirs $data/{train,dev,test} with utt2intent (14 classes). The corpus has no
# official split: a seeded 80/10/10 split per language, stratified by intent. Stage 2.
#   local/data.sh [--langs "a b"] --data DIR [--nj N] [--seed N]    (run.sh --data-opts "--seed N")
set -euo pipefail
langs=
data=data
nj=4        # (one archive: nothing to parallelise)
seed=42
. ./path.sh
. ./db.sh
. "$MAIN_ROOT/tools/parse_options.sh"
python -m mslam.bin.prepare_minds14 prepare --root "$MINDS14" --out "$data" --seed "$seed" --no-progress \
    ${langs:+--langs "${langs// /,}"}
