#!/usr/bin/env bash
# The stages of a joint pre-training recipe: unlabeled speech, unlabeled text and paired speech-text
# into one encoder (mSLAM). A recipe's run.sh fixes its options and passes the user's on:
#
#   ./pretrain.sh --pretrain-config conf/pretrain_0.6b.yaml --langs "de fr" "$@"
#
# What the recipe itself provides (see egs/TEMPLATE/README.md):
#   local/download.sh --langs L [--checksums F]          fetch the corpora (or check existing copies)
#   local/data.sh --langs L --data DIR [--nj N]          write DIR/speech/train (unlabeled speech),
#       DIR/paired/train (speech with transcripts) and DIR/text/{train,dev}/<lang>.txt (text shards)
#
# Stages:
#   1  download               local/download.sh
#   2  data preparation       local/data.sh; every data dir is validated
#   3  character vocabulary   --vocab-size characters over text shards and transcripts, languages drawn
#                             with temperature --vocab-temperature (paper: 4096, T = 3)
#   4  features and CMVN      --feats-type fbank: the speech and paired sets' fbank dumped once (ark/scp
#                             under $dumpdir/fbank); global mean/variance of the (first) unlabeled speech set;
#                             --data-format shards: every set converted to a shard set ($dumpdir/shards/<set>,
#                             python -m mslam.bin.make_shards) that pre-training reads lazily
#   5  pre-training           mslam.bin.pretrain (torchrun over --ngpu GPUs per node, --nnodes nodes)
#   6  report                 the last value of every loss term and the loss curves of every run in $exp,
#                             a row per run named by its --tag (default: the config's name): $exp/RESULTS.md
# The run dir ($exp/pretrain, or $exp/pretrain_<tag> with --tag) also holds chars.txt and cmvn.npz, so that a
# fine-tuning recipe given --init $exp/pretrain finds the vocabulary and statistics the encoder was trained with.
# Stages 1-4 are done once per recipe; 5-6 once per run ($exp/pretrain*/.stages).
set -euo pipefail

stage=1
stop_stage=100
pretrain_config=      # pre-training config (YAML, or a shipped name: mslam_0.6b, mslam_2b)
tag=                  # names the run: its dir ($exp/pretrain_<tag>) and its row in the report (default: the
                      # config's name, in $exp/pretrain); e.g. two variants of one config: --tag w2v-bert --pretrain-args
                      # objective.variant=w2v-bert, then --tag mslam-ctc
langs=                # languages (the corpora's codes; empty: the recipe's default)
speech_sets=speech/train   # unlabeled speech: data dirs (under --data, or absolute)
paired_sets=paired/train   # paired speech-text: data dirs with `text` and `utt2lang`
text_sets=text/train       # unlabeled text: dirs of <lang>.txt shards
local_opts=           # options of both local/download.sh and local/data.sh (e.g. "--years 2019,2020")
data_opts=            # options of local/data.sh only
pretrain_args=        # extra config overrides: "KEY=VALUE KEY=VALUE" (no --set)
vocab_size=4096       # paper: 4096 characters over 101 languages
vocab_temperature=3.0 # paper: T = 3
checksums=            # sha256sum-format file to verify the download against
nj=4                  # parallel jobs of data preparation and feature extraction
feats_type=raw        # raw: features computed from the audio at every step; fbank: dumped once in stage 4
                      # (32 kB per second of audio: 46 TB for the paper's 429k hours, hence raw by default)
data_format=shards    # shards: stage 4 writes shard sets, read lazily (memory flat in corpus size, languages
                      # mixed per utterance); dirs: pre-training reads the data dirs and text shards whole
ngpu=auto             # GPUs per node: auto (every GPU of this machine, the CPU if none), or N (0: CPU);
                      # > 1 or --nnodes > 1 runs torchrun
nnodes=1              # nodes: run stages 1-4 once, then stage 5 on every node with the same --master-addr
master_addr=localhost
data=data
dumpdir=dump          # dumped features: $dumpdir/fbank/<set>
exp=exp
help_message="Usage: $0 --pretrain-config CONFIG [options]
  Stages: 1 download, 2 data preparation, 3 character vocabulary, 4 features and CMVN, 5 pre-training, 6 report"

. ./path.sh
. ./cmd.sh
. "$MAIN_ROOT/tools/parse_options.sh"
if [ $# -gt 0 ]; then echo "$0: unexpected argument(s): $*" >&2; echo "$help_message" >&2; exit 1; fi
[ -n "$pretrain_config" ] || { echo "$0: --pretrain-config names no pre-training config" >&2; exit 1; }
run=$exp/pretrain${tag:+_$tag}
run_name=${tag:-$(basename "$pretrain_config" .yaml)}
under_data() { case $1 in /*) echo "$1" ;; *) echo "$data/$1" ;; esac; }
abspath() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
yaml_list() { local out=; for x in "$@"; do out+="${out:+, }$x"; done; echo "[$out]"; }
stage_dir=$exp/.stages
. "$MAIN_ROOT/tools/stages.sh"
. "$MAIN_ROOT/egs/TEMPLATE/corpus_stages.sh"
. "$MAIN_ROOT/egs/TEMPLATE/features.sh"
. "$MAIN_ROOT/egs/TEMPLATE/ngpu.sh"
check_feats_type
check_ngpu
case $data_format in shards|dirs) ;;
    *) echo "$0: --data-format must be shards or dirs; got '$data_format'" >&2; exit 1 ;;
esac
shard_set() {   # the shard set of a set (stage 4, --data-format shards); absolute sets as features.sh does
    case $1 in /*) abspath "$dumpdir/shards/external$1" ;; *) abspath "$dumpdir/shards/$1" ;; esac
}
feats_stage=4
device=cpu   # until resolve_ngpu, before the training stage
mkdir -p "$exp"

corpus_stages $(for set in $speech_sets $paired_sets; do under_data "$set"; done)

if stage_begin 3 "character vocabulary"; then
    stage_cmd "$train_cmd" "$exp/log/vocab.log" python -m mslam.bin.build_char_vocab \
        --text-shards $(for s in $text_sets; do under_data "$s"; done) \
        --data-dirs $(for s in $paired_sets; do under_data "$s"; done) --max-size "$vocab_size" --temperature "$vocab_temperature" \
        --out "$data/chars.txt"
    stage_end 3
fi

if stage_begin 4 "features and CMVN statistics"; then
    if [ "$feats_type" = fbank ]; then
        # shellcheck disable=SC2086
        dump_fbank $speech_sets $paired_sets
        # The statistics of the first speech set, over every utterance, come with its features.
        cp "$(feats_dir "${speech_sets%% *}")/cmvn.npz" "$data/cmvn.npz"
    else
        stage_cmd "$train_cmd" "$exp/log/cmvn.log" python -m mslam.bin.compute_cmvn --no-progress \
            "$(under_data "${speech_sets%% *}")" "$data/cmvn.npz"
    fi
    if [ "$data_format" = shards ]; then   # each conversion is skipped when its set is already made
        for kind_sets in "speech:$speech_sets" "paired:$paired_sets" "text:$text_sets"; do
            kind=${kind_sets%%:*}
            for set in ${kind_sets#*:}; do
                src=$(under_data "$set"); [ "$kind" = text ] || src=$(feats_dir "$set")
                stage_cmd "$train_cmd" "$exp/log/shards.$kind.${set//\//_}.log" python -m mslam.bin.make_shards \
                    --kind "$kind" --out "$(shard_set "$set")" "$src"
            done
        done
    fi
    stage_end 4
fi

# Stages 5-6 are done once per run: another --tag is another run.
stage_dir=$run/.stages
if [ "$stop_stage" -ge 5 ] && [ "$stage" -le 5 ]; then
    # shellcheck disable=SC2086
    require_feats $speech_sets $paired_sets
    resolve_ngpu
fi
# Where training reads the speech sets: names under --data (raw), or the dumped features' dirs.
# With --data-format shards, their shard sets (and the text sets' too).
reads_from() {
    if [ "$data_format" = shards ]; then shard_set "$1"
    elif [ "$feats_type" = raw ] || [ "$2" = text ]; then echo "$1"
    else abspath "$(feats_dir "$1")"; fi
}
speech_dirs=() paired_dirs=() text_dirs=()
for set in $speech_sets; do speech_dirs+=("$(reads_from "$set" speech)"); done
for set in $paired_sets; do paired_dirs+=("$(reads_from "$set" paired)"); done
for set in $text_sets; do text_dirs+=("$(reads_from "$set" text)"); done
if [ "$stop_stage" -ge 5 ] && [ "$stage" -le 5 ] && [ "$data_format" = shards ]; then
    for dir in "${speech_dirs[@]}" "${paired_dirs[@]}" "${text_dirs[@]}"; do
        [ -f "$dir/index.json" ] || { echo "$0: $dir: no shard set; run stage 4 again (--stage 4), or pass" \
            "--data-format dirs" >&2; exit 1; }
    done
fi

if stage_begin 5 "pre-training ($run_name: $pretrain_config)"; then
    if [ "$nnodes" -gt 1 ] && [ "$ngpu" -eq 0 ]; then
        echo "$0: --nnodes $nnodes: pre-training across nodes runs on GPUs; give --ngpu N (GPUs per node)" >&2
        exit 1
    fi
    mkdir -p "$run"
    cp "$data/chars.txt" "$data/cmvn.npz" "$run/"   # beside the checkpoints, for fine-tuning recipes
    echo "$run_name" > "$run/name"                   # its row in the report
    if [ "$ngpu" -gt 1 ] || [ "$nnodes" -gt 1 ]; then
        launcher=(torchrun --nnodes "$nnodes" --nproc-per-node "$ngpu" --rdzv-backend c10d
                  --rdzv-endpoint "$master_addr:29500" --rdzv-id mslam-pretrain -m mslam.bin.pretrain)
    else
        launcher=(python -m mslam.bin.pretrain)
    fi
    # One log per node when several share the run dir.
    log=$run/log/pretrain.log; [ "$nnodes" -eq 1 ] || log=$run/log/pretrain.$(hostname -s).log
    # shellcheck disable=SC2086
    stage_cmd "$cuda_cmd --gpu $ngpu" "$log" "${launcher[@]}" --config "$pretrain_config" --output-dir "$run" \
        --resume --no-progress --set data.root="$data" data.vocab=chars.txt data.cmvn=cmvn.npz \
        data.speech.dirs="$(yaml_list "${speech_dirs[@]}")" data.text.dirs="$(yaml_list "${text_dirs[@]}")" \
        data.paired.dirs="$(yaml_list "${paired_dirs[@]}")" data.speech.format="$data_format" \
        data.text.format="$data_format" data.paired.format="$data_format" \
        trainer.device="$device" $pretrain_args
    stage_end 5
fi

if stage_begin 6 "report"; then
    # Every run of this recipe so far, each named as its stage 5 recorded.
    runs=()
    for dir in "$exp"/pretrain "$exp"/pretrain_*; do
        [ -f "$dir/train.jsonl" ] || continue
        runs+=(--run "$(cat "$dir/name" 2> /dev/null || basename "$dir")=$dir")
    done
    stage_cmd "$train_cmd" "$exp/log/report.log" python -m mslam.bin.pretrain_report \
        "${runs[@]}" --out "$exp/RESULTS.md" --plot "$exp/pretrain_loss.png"
    echo "results: $exp/RESULTS.md"
    stage_end 6
fi
stages_summary
