#!/usr/bin/env bash
# From-scratch reference rows: each task's model fine-tuned without pre-training, on the few-label
# sets (train_few) or on every training label (train), scored on the held-out voices of test_few,
# beside what a constant output scores. They show that each task's model, decoder and metric learn.
#
#   local/scratch_reference.sh                          # few labels (stage 2's train_few sets)
#   local/scratch_reference.sh --labels all --tasks st --overrides "trainer.max_steps=1000 regularization.start_step=1000"
#
# Writes $exp/scratch_<labels>/<task>/ (a fine-tuning run, decode_test/) and $exp/scratch_<labels>.md.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../path.sh"
labels=few      # few: <task>/train_few; all: <task>/train
tasks="langid intent asr st"
data=data
exp=exp
threads=$(nproc)
overrides=      # extra --set KEY=VALUE pairs for every task, space-separated
help_message="Usage: $0 [--labels few|all] [--tasks LIST] [--overrides \"KEY=VALUE ...\"] [--data DIR] [--exp DIR] [--threads N]"
. "$MAIN_ROOT/tools/parse_options.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
case $labels in few) train_set=train_few ;; all) train_set=train ;;
    *) echo "$0: --labels is few or all, not '$labels'" >&2; exit 1 ;; esac

table=$exp/scratch_$labels.md
mkdir -p "$exp"
[ -f "$table" ] || { echo "| task | training set | steps | training s | test_few | constant output |"
                     echo "|---|---|---:|---:|---|---|"; } > "$table"
for task in $tasks; do
    out=$exp/scratch_$labels/$task
    mkdir -p "$out"
    if [ ! -f "$out/final.pt" ]; then
        start=$(date +%s)
        OMP_NUM_THREADS=$threads python -m mslam.bin.finetune --config conf/finetune_$task.yaml --output-dir "$out" \
            --resume --no-progress --set data.root="$data" model_from=mini data.char_vocab=chars.txt \
            data.train="[$task/$train_set]" $overrides > "$out.log" 2>&1 || { echo "$0: $task failed; see $out.log" >&2; exit 1; }
        echo $(( $(date +%s) - start )) > "$out/train_seconds"
    fi
    python -m mslam.bin.decode --exp-dir "$out" --data "$data/$task/test_few" --out-dir "$out/decode_test" \
        --no-progress > "$out/decode_test.log" 2>&1
    line=$(python -m mslam.bin.score --task "$task" --data "$data/$task/test_few" --hyp "$out/decode_test/hyp" \
        --groups conf/st_groups.json)
    echo "$line"
    # "score: TASK DIR: METRIC VALUE (BASELINE: VALUE)" -> table cells
    metric=$(sed -E 's/^score: [^:]*: ([^(]*).*/\1/' <<< "$line")
    baseline=$(sed -nE 's/.*\((.*)\)$/\1/p' <<< "$line")
    steps=$(sed -nE 's/.*"step": ([0-9]+).*/\1/p' "$out/train.jsonl" | tail -n 1)
    row="| $task | $task/$train_set | $steps | $(cat "$out/train_seconds") | $metric | ${baseline:--} |"
    { grep -v "^| $task |" "$table"; echo "$row"; } > "$table.tmp" && mv "$table.tmp" "$table"
done
cat "$table"
