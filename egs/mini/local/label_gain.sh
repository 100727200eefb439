#!/usr/bin/env bash
# What pre-training is worth against the number of labels: each encoder (scratch: no pre-training;
# otherwise exp/pretrain_<encoder>) fine-tuned with each seed on N utterances per language of each
# task's training set (all: every label), scored on the held-out voices of test_few; then a table of
# mean +- std per cell with the gain over scratch, and a plot of that gain against N.
#
#   local/label_gain.sh --tasks "asr langid" --labels "10 25 100 all" --encoders "scratch w2v-bert mslam-ctc" --seeds "0 1 2"
#
# Every run has the task's fine-tuning config and steps, whatever N (conf/finetune_<task>.yaml; add
# --overrides "KEY=VALUE ..." for all runs). Writes $exp/label_gain/<task>/<encoder>/n<N>/seed<S>/
# (the run; decode_test/scores.json), then $exp/label_gain/gain.md and gain.png. A finished run is
# kept: run the script again after a kill and it goes on with the next one.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../path.sh"
tasks="asr langid"
labels="10 25 100 all"   # utterances per language; training subsets are seeded draws over the voices
encoders="scratch w2v-bert mslam-ctc"
seeds="0 1 2"            # trainer.seed: initialisation (head, fresh layers), data order, dropout
data=data
exp=exp
threads=$(nproc)
overrides=
help_message="Usage: $0 [--tasks LIST] [--labels LIST] [--encoders LIST] [--seeds LIST] [--overrides \"KEY=VALUE ...\"] [--data DIR] [--exp DIR] [--threads N]"
. "$MAIN_ROOT/tools/parse_options.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

for enc in $encoders; do
    [ "$enc" = scratch ] || [ -d "$exp/pretrain_$enc" ] || {
        echo "$0: no pre-training run $exp/pretrain_$enc (./run.sh --stage 3 --models $enc)" >&2; exit 1; }
done
for task in $tasks; do
    for n in $labels; do
        train=$task/train
        if [ "$n" != all ]; then
            train=$task/train_n$n
            [ -f "$data/$train/.done" ] || { python -c "from mslam.data.kaldi import subset_data_dir as s; \
                print(s('$data/$task/train', '$data/$train', per_lang=$n, seed=0))" >/dev/null \
                && touch "$data/$train/.done"; }
        fi
        for enc in $encoders; do
            init=(--set model_from=mini); [ "$enc" = scratch ] || init=(--init "$exp/pretrain_$enc" --set)
            for seed in $seeds; do
                out=$exp/label_gain/$task/$enc/n$n/seed$seed
                [ -f "$out/decode_test/scores.json" ] && continue
                echo "$(date +%T) $task $enc n=$n seed=$seed -> $out"
                mkdir -p "$out"
                # shellcheck disable=SC2086
                OMP_NUM_THREADS=$threads python -m mslam.bin.finetune --config conf/finetune_$task.yaml \
                    --output-dir "$out" --resume --no-progress "${init[@]}" data.root="$data" \
                    data.char_vocab=chars.txt "data.train=[$train]" trainer.seed=$seed $overrides \
                    > "$out/finetune.log" 2>&1 || { echo "$0: failed; see $out/finetune.log" >&2; exit 1; }
                OMP_NUM_THREADS=$threads python -m mslam.bin.decode --exp-dir "$out" --data "$data/$task/test_few" \
                    --out-dir "$out/decode_test" --no-progress > "$out/decode.log" 2>&1
                python -m mslam.bin.score --task "$task" --data "$data/$task/test_few" --hyp "$out/decode_test/hyp"
            done
        done
    done
done
python local/plot_label_gain.py --runs "$exp/label_gain" --out "$exp/label_gain/gain"
