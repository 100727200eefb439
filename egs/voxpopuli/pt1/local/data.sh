#!/usr/bin/env bash
# mSLAM pre-training data (stage 2):
#   $data/speech/train    unlabeled speech: VoxPopuli segments
#   $data/paired/{train,dev,test}   speech with transcripts: VoxPopuli ASR
#   $data/text/{train,dev}/<lang>.txt   mC4 sentences: egs/mc4/text1's output (db.sh: MC4_TEXT)
# (run.sh adds the data dirs of db.sh's EXTRA_SPEECH_DIRS and EXTRA_PAIRED_DIRS to the first two)
#   local/data.sh [--langs "a b"] [--years "2019 2020"] [--v2 true] --data DIR [--nj N]
# Each language is a shard, prepared in bounded memory: first the work all languages share (the split of
# the unlabelled table by language; the ASR session archives), then N jobs of a job array ($train_cmd:
# run.pl here, slurm.pl on a cluster) each prepare every N-th language (logs: <out>/log/prepare.JOB.log),
# then one call merges them. A killed run resumes with the languages it had not finished (kept in
# $data/speech.parts and $data/paired.parts until the merge).
set -euo pipefail
langs=
years=
v2=false
data=data
nj=4
. ./path.sh
. ./db.sh
. ./cmd.sh
. "$MAIN_ROOT/tools/parse_options.sh"
. local/selection.sh

# prepare_in_parts WHAT OUT OPTIONS...: the shared work, the job array, the merge
prepare_in_parts() {
    local out=$2
    local prepare=(python -m mslam.bin.prepare_voxpopuli prepare --what "$1" --root "$VOXPOPULI" --out "$out"
                   --no-progress "${@:3}")
    "${prepare[@]}" --shared-only --nj "$nj"
    $train_cmd JOB=1:"$nj" "$out/log/prepare.JOB.log" "${prepare[@]}" --part "JOB/$nj"
    "${prepare[@]}" --nj "$nj"
}
prepare_in_parts unlabelled "$data/speech" "${unlabelled[@]}"
prepare_in_parts asr "$data/paired" "${asr[@]}"

text_dir=$MC4_TEXT
if [ ! -d "$text_dir/train" ]; then
    echo "local/data.sh: no text shards in $text_dir/train; run egs/mc4/text1 first (./run.sh there), or set MC4_TEXT" >&2
    exit 1
fi
rm -rf "$data/text"
mkdir -p "$data/text"
for split in train dev; do
    [ -d "$text_dir/$split" ] && ln -s "$(cd "$text_dir/$split" && pwd)" "$data/text/$split"
done
echo "local/data.sh: text shards of $(ls "$data/text/train" | wc -l) languages from $text_dir"
