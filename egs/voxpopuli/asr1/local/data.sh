#!/usr/bin/env bash
# VoxPopuli ASR: Kaldi data dirs $data/{train,dev,test} (segments into the session recordings; rows of
# several VAD pieces joined into $data/joined_audio/; text: the normalised transcript, utt2lang) of every
# chosen language together. Stage 2.
#   local/data.sh [--langs "a b"] [--years "2019 2020"] --data DIR [--nj N]
# Each language is prepared as a shard (N at a time, in bounded memory); a killed run resumes with the
# languages it had not finished (kept in $data.parts until then).
set -euo pipefail
langs=
years=
data=data
nj=4
. ./path.sh
. ./db.sh
. "$MAIN_ROOT/tools/parse_options.sh"
python -m mslam.bin.prepare_voxpopuli prepare --what asr --root "$VOXPOPULI" --out "$data" --nj "$nj" --no-progress \
    ${langs:+--langs "${langs// /,}"} ${years:+--years "${years// /,}"}
