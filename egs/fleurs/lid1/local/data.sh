#!/usr/bin/env bash
# FLEURS: Kaldi data dirs $data/{train,dev,test} of every chosen language together; the LangID label
# is utt2lang (the FLEURS code, e.g. de_de). Stage 2.
#   local/data.sh [--langs "a b"] --data DIR [--nj N]
# Each language is a shard: N jobs of a job array ($train_cmd: run.pl here, slurm.pl on a cluster) each
# extract and read every N-th language (logs: $data/log/prepare.JOB.log), then one call merges them. A
# killed run resumes with the languages it had not finished (kept in $data.parts until the merge).
set -euo pipefail
langs=
data=data
nj=4
. ./path.sh
. ./db.sh
. ./cmd.sh
. "$MAIN_ROOT/tools/parse_options.sh"
prepare=(python -m mslam.bin.prepare_fleurs prepare --root "$FLEURS" --out "$data" --no-progress
         ${langs:+--langs "${langs// /,}"})
$train_cmd JOB=1:"$nj" "$data/log/prepare.JOB.log" "${prepare[@]}" --part "JOB/$nj"
"${prepare[@]}" --nj "$nj"
