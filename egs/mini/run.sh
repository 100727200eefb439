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
#   2  character vocabulary; global CMVN statistics; few-label fine-tuning sets (train_few: --labels-per-lang utterances
#      per language) and small dev/test sets
#   3  pre-train three encoders with the same steps and speech batch: w2v-bert (speech only),
#      mslam-tlm (+ text, TLM) and mslam-ctc (+ CTC on paired speech)
#   4  fine-tune each of them, and a from-scratch encoder ("none"), on ST (speech only and joint
#      ST+MT), ASR (CTC), intent and LangID
#   5  decode the test sets (and zero-shot text translation with the speech-only ST models); score;
#      linear probes of the frozen encoders (language and intent from each layer)
#   6  RESULTS.md: the paper's tables in miniature, and plots
set -euo pipefail
command_line="$0 $*"
. "$(dirname "${BASH_SOURCE[0]}")/path.sh"
. "$(dirname "${BASH_SOURCE[0]}")/cmd.sh"

stage=1
stop_stage=100
size=small      # tiny (tests, seconds) | small (the demo, minutes) | base (a longer local run)
seed=0
nj=2            # processes at once (espeak-ng in stage 1, fine-tuning and decoding jobs in 4-5)
pretrain_conf=  # pre-training config (default by size: mini; tiny for --size tiny)
pretrain_steps= # pre-training steps per encoder (default by size)
finetune_steps= # fine-tuning steps per task, overriding conf/finetune_*.yaml (tiny: a few)
labels_per_lang=100  # few-label fine-tuning: utterances per language (intent: half, ST: 60%)
data_format=shards   # pre-training reads shard sets ($data/shards/<set>, made at the start of stage 3;
                     # languages mixed per utterance) | dirs: the data dirs and text shards, read whole
models="none w2v-bert mslam-tlm mslam-ctc"
tasks="st st_joint asr intent langid"
data=data       # the corpus and its data dirs
exp=exp         # experiments; finished stages are recorded in $exp/.stages
results=.       # where RESULTS.md and its plots (results/) go
help_message="Usage: $0 [--stage N] [--stop-stage N] [--size tiny|small|base] [--seed N] [--nj N] [--data DIR] [--exp DIR] [--results DIR]
          [--pretrain-steps N] [--finetune-steps N] [--labels-per-lang N] [--models LIST] [--tasks LIST]
          [--data-format shards|dirs]"

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

case $data_format in shards|dirs) ;;
    *) echo "$0: --data-format must be shards or dirs; got '$data_format'" >&2; exit 1 ;;
esac
# Pre-training's sets (relative to data.root) and where it reads them: the set, or its shard set.
pretrain_sets=("speech speech/train" "paired asr/train" "text text_shards/train")
reads() { if [ "$data_format" = shards ]; then echo "shards/$1"; else echo "$1"; fi; }
pretrain_data=(data.speech.dirs="[$(reads speech/train)]" data.paired.dirs="[$(reads asr/train)]"
               data.text.dirs="[$(reads text_shards/train)]" data.speech.format="$data_format"
               data.paired.format="$data_format" data.text.format="$data_format")
decode_opts=()    # tiny: greedy, and translations cut at 16 tokens, as its 3-step models' run to the length limit
finetune_sets=()
case $size in
    tiny) pretrain_conf=${pretrain_conf:-tiny}; pretrain_steps=${pretrain_steps:-3}; finetune_steps=${finetune_steps:-3}
          decode_opts=(--method greedy); finetune_sets=(decode.max_len=16)
          # conf tiny has no data section: a few sequences per source
          pretrain_data+=(data.speech.batch_sequences=4 data.text.batch_sequences=8 data.paired.batch_sequences=4
                          "model.vocab_size=512") ;;
    small) pretrain_conf=${pretrain_conf:-mini}; pretrain_steps=${pretrain_steps:-100} ;;
    base) pretrain_conf=${pretrain_conf:-mini}; pretrain_steps=${pretrain_steps:-1000} ;;
esac
# One thread per job when jobs run side by side (small models scale poorly across threads).
threads=$(( $(nproc) / nj )); [ "$threads" -ge 1 ] || threads=1

if stage_begin 2 "character vocabulary, CMVN statistics and few-label data sets"; then
    python -m mslam.bin.build_char_vocab --text-shards "$data/text_shards/train" \
        --data-dirs "$data/asr/train" "$data/st/train" "$data/mt/train" --out "$data/chars.txt"
    python local/few_label_sets.py "$data" "$labels_per_lang"
    python -m mslam.bin.compute_cmvn --no-progress "$data/speech/train" "$data/cmvn.npz"
    stage_end 2
fi

# Run "$@" under $train_cmd with its log, at most $nj at once; a failure is recorded in $failed_jobs.
failed_jobs=$exp/.failed_jobs
job() {
    local log=$1; shift
    while [ "$(jobs -rp | wc -l)" -ge "$nj" ]; do wait -n || true; done
    ( OMP_NUM_THREADS=$threads $train_cmd "$log" "$@" || echo "$log" >> "$failed_jobs" ) &
}
wait_jobs() {  # wait for every job; fail, naming the logs, if any failed
    wait
    if [ -s "$failed_jobs" ]; then
        echo "$(wc -l < "$failed_jobs") job(s) failed; see:" >&2
        sed 's/^/    /' "$failed_jobs" >&2
        rm -f "$failed_jobs"
        return 1
    fi
}
mkdir -p "$exp"; rm -f "$failed_jobs"

if stage_begin 3 "pre-train w2v-bert, mslam-tlm and mslam-ctc ($pretrain_steps steps each)"; then
    if [ "$data_format" = shards ]; then   # a set already converted from the same inputs is not redone
        for kind_set in "${pretrain_sets[@]}"; do
            set=${kind_set#* }
            python -m mslam.bin.make_shards --kind "${kind_set%% *}" --out "$data/shards/$set" "$data/$set"
        done
    fi
    for variant in w2v-bert mslam-tlm mslam-ctc; do
        [[ " $models " == *" $variant "* ]] || continue
        # One at a time with every core: pre-training is the big job.
        $train_cmd "$exp/pretrain_$variant/pretrain.log" python -m mslam.bin.pretrain --config "$pretrain_conf" \
            --output-dir "$exp/pretrain_$variant" --resume --no-progress --set objective.variant="$variant" \
            trainer.max_steps="$pretrain_steps" trainer.save_every="$pretrain_steps" data.root="$data" \
            data.vocab=chars.txt data.cmvn=cmvn.npz trainer.tensorboard=false "${pretrain_data[@]}"
        tail -n 1 "$exp/pretrain_$variant/train.jsonl" | cut -c 1-200
    done
    stage_end 3
fi

if stage_begin 4 "fine-tune ($models) x ($tasks)"; then
    for model in $models; do
        init=(); [ "$model" = none ] || init=(--init "$exp/pretrain_$model")
        for task in $tasks; do
            out=$exp/finetune/$model/$task
            steps=(); [ -z "$finetune_steps" ] || steps=(trainer.max_steps="$finetune_steps" trainer.eval_every="$finetune_steps")
            job "$out/finetune.log" python -m mslam.bin.finetune --config conf/finetune_$task.yaml "${init[@]}" \
                --output-dir "$out" --resume --no-progress --set data.root="$data" model_from="$pretrain_conf" \
                data.char_vocab=chars.txt "${steps[@]}" "${finetune_sets[@]}"
        done
    done
    wait_jobs || { echo "stage 4: fine-tuning failed" >&2; exit 1; }
    stage_end 4
fi

if stage_begin 5 "decode and score the test sets; probe the encoders"; then
    for model in $models; do
        for task in $tasks; do
            out=$exp/finetune/$model/$task
            set_name=${task%_joint}
            job "$out/decode_test/decode.log" bash -c "python -m mslam.bin.decode --exp-dir $out ${decode_opts[*]} \
                --data $data/$set_name/test_few --out-dir $out/decode_test --no-progress &&
                python -m mslam.bin.score --task $set_name --data $data/$set_name/test_few \
                --hyp $out/decode_test/hyp --groups conf/st_groups.json"
            if [ "$set_name" = st ]; then  # text -> English with the same model (zero-shot for task st)
                job "$out/decode_mt/decode.log" bash -c "python -m mslam.bin.decode --exp-dir $out ${decode_opts[*]} \
                    --data $data/mt/test_few --text-input --out-dir $out/decode_mt --no-progress &&
                    python -m mslam.bin.score --task mt --data $data/mt/test_few --hyp $out/decode_mt/hyp"
            fi
        done
    done
    wait_jobs || { echo "stage 5: decoding or scoring failed" >&2; exit 1; }
    # What each frozen encoder's layers say about language and intent, before fine-tuning.
    $train_cmd "$exp/probe.log" python local/probe_encoders.py --data "$data" --exp "$exp" --models "$models" \
        --config "$pretrain_conf" --out "$exp/probe.json"
    stage_end 5
fi

if stage_begin 6 "RESULTS.md and plots"; then
    mkdir -p "$results"
    python local/make_results.py --exp "$exp" --data "$data" --out "$results/RESULTS.md" --plots "$results/results" \
        --models "$models" --size "$size" --command "$command_line"
    stage_end 6
fi

stages_summary
