#!/usr/bin/env bash
# CoVoST 2 X->En: Kaldi data dirs $data/{train,dev,test} (text: the source transcript, text.en: the
# English translation, utt2lang: the Common Voice code) and $data/groups.json, the paper's
# high/mid/low resource groups for the BLEU table. Stage 2.
#   local/data.sh [--langs "a b"] --data DIR [--nj N]
# Each language is a shard: N jobs of a job array ($train_cmd: run.pl here, slurm.pl on a cluster) each
# extract and join every N-th language (logs: $data/log/prepare.JOB.log), then one call merges them. A
# killed run resumes with the languages it had not finished (kept in $data.parts until the merge).
set -euo pipefail
langs=
data=data
nj=4
. ./path.sh
. ./db.sh
. ./cmd.sh
. "$MAIN_ROOT/tools/parse_options.sh"
prepare=(python -m mslam.bin.prepare_covost2 prepare --cv-root "$COMMONVOICE" --covost-root "$COVOST2"
         --out "$data" --no-progress ${langs:+--langs "${langs// /,}"})
$train_cmd JOB=1:"$nj" "$data/log/prepare.JOB.log" "${prepare[@]}" --part "JOB/$nj"
"${prepare[@]}" --nj "$nj"
python -m mslam.bin.prepare_covost2 groups > "$data/groups.json.tmp" && mv "$data/groups.json.tmp" "$data/groups.json"
