#!/usr/bin/env bash
# VoxPopuli ASR: Kaldi data dirs $data/{train,dev,test} (segments into the session recordings; rows of
# several VAD pieces joined into $data/joined_audio/; text: the normalised transcript, utt2lang) of every
# chosen language together. Stage 2.
#   local/data.sh [--langs "a b"] [--years "2019 2020"] --data DIR [--nj N]
# Each language is a shard. The session archives hold every language, so one call extracts them first;
# then N jobs of a job array ($train_cmd: run.pl here, slurm.pl on a cluster) each prepare every N-th
# language (logs: $data/log/prepare.JOB.log), and one call merges them. A killed run resumes with the
# languages it had not finished (kept in $data.parts until the merge).
set -euo pipefail
langs=
years=
data=data
nj=4
. ./path.sh
. ./db.sh
. ./cmd.sh
. "$MAIN_ROOT/tools/parse_options.sh"
prepare=(python -m mslam.bin.prepare_voxpopuli prepare --what asr --root "$VOXPOPULI" --out "$data" --no-progress
         ${langs:+--langs "${langs// /,}"} ${years:+--years "${years// /,}"})
"${prepare[@]}" --shared-only --nj "$nj"
$train_cmd JOB=1:"$nj" "$data/log/prepare.JOB.log" "${prepare[@]}" --part "JOB/$nj"
"${prepare[@]}" --nj "$nj"
