#!/usr/bin/env bash
# egs/mini: mSLAM end to end on an offline toy corpus (espeak-ng + num2words), on a laptop.
#
#   ./run.sh                         # the demo (size small)
#   ./run.sh --size tiny --stop-stage 1
#   ./run.sh --stage 1 --seed 3      # redo the corpus with another seed
#
# Stages:
#   1  generate the toy corpus: audio, Kaldi data dirs (speech, asr, st, intent, langid, text, mt)
#      and mC4-style text shards under $data (see README.md)
# Planned (added by later issues, not here yet): features (fbank) and dumps; character vocabulary
# and SentencePiece model; mSLAM pre-training on speech + text; fine-tuning and scoring for
# ASR (CER/WER), speech translation X->En (BLEU), intent classification, LangID, zero-shot text
# translation; the results table and plots.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/path.sh"
. "$(dirname "${BASH_SOURCE[0]}")/cmd.sh"

stage=1
stop_stage=100
size=small      # tiny (tests, seconds) | small (the demo, minutes) | base (a longer local run)
seed=0
nj=2            # espeak-ng processes at once
data=data       # the corpus and its data dirs
exp=exp         # experiments; finished stages are recorded in $exp/.stages
help_message="Usage: $0 [--stage N] [--stop-stage N] [--size tiny|small|base] [--seed N] [--nj N] [--data DIR] [--exp DIR]"

. "$MAIN_ROOT/tools/parse_options.sh"
if [ $# -gt 0 ]; then
    echo "$0: unexpected argument(s): $*" >&2
    echo "$help_message" >&2
    exit 1
fi
# Relative paths (--data, --exp) are relative to the recipe directory, wherever run.sh is called from.
cd "$(dirname "${BASH_SOURCE[0]}")"
stage_dir=$exp/.stages
. "$MAIN_ROOT/tools/stages.sh"

# A corpus made with another size or seed is not the one asked for: make stage 1 run again.
if [ -f "$stage_dir/1.done" ] && ! python local/corpus_matches.py "$data" "$size" "$seed"; then
    echo "stage 1: $data holds another corpus than --size $size --seed $seed; generating it again"
    rm -f "$stage_dir/1.done"
fi

if stage_begin 1 "generate the toy corpus (size $size, seed $seed)"; then
    # Writes $data/summary.json last, after validating every data dir it wrote.
    python -m mslam.bin.make_mini_corpus --size "$size" --seed "$seed" --nj "$nj" --out-dir "$data"
    stage_end 1
fi

stages_summary
