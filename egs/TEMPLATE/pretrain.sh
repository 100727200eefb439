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
#   4  CMVN statistics        global mean/variance of the (first) unlabeled speech set's fbank
#   5  pre-training           mslam.bin.pretrain (torchrun over --ngpu GPUs per node, --nnodes nodes)
#   6  report                 the last value of every loss term and the loss curves: $exp/RESULTS.md
# The run dir ($exp/pretrain) also holds chars.txt and cmvn.npz, so that a fine-tuning recipe given
# --init $exp/pretrain finds the vocabulary and statistics the encoder was trained with.
set -euo pipefail

stage=1
stop_stage=100
pretrain_config=      # pre-training config (YAML, or a shipped name: mslam_0.6b, mslam_2b)
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
nj=4                  # parallel jobs of data preparation
ngpu=1                # GPUs per node (0: CPU); > 1 or --nnodes > 1 runs torchrun
nnodes=1              # nodes: run stages 1-4 once, then stage 5 on every node with the same --master-addr
master_addr=localhost
data=data
exp=exp
help_message="Usage: $0 --pretrain-config CONFIG [options]
  Stages: 1 download, 2 data preparation, 3 character vocabulary, 4 CMVN, 5 pre-training, 6 report"

. ./path.sh
. ./cmd.sh
. "$MAIN_ROOT/tools/parse_options.sh"
if [ $# -gt 0 ]; then echo "$0: unexpected argument(s): $*" >&2; echo "$help_message" >&2; exit 1; fi
[ -n "$pretrain_config" ] || { echo "$0: --pretrain-config names no pre-training config" >&2; exit 1; }
device=cpu; [ "$ngpu" -eq 0 ] || device=cuda
run=$exp/pretrain
under_data() { case $1 in /*) echo "$1" ;; *) echo "$data/$1" ;; esac; }
yaml_list() { local out=; for x in "$@"; do out+="${out:+, }$x"; done; echo "[$out]"; }
stage_dir=$exp/.stages
. "$MAIN_ROOT/tools/stages.sh"
. "$MAIN_ROOT/egs/TEMPLATE/corpus_stages.sh"
mkdir -p "$exp"

corpus_stages $(for set in $speech_sets $paired_sets; do under_data "$set"; done)

if stage_begin 3 "character vocabulary"; then
    stage_cmd "$train_cmd" "$exp/log/vocab.log" python -m mslam.bin.build_char_vocab \
        --text-shards $(for s in $text_sets; do under_data "$s"; done) \
        --data-dirs $(for s in $paired_sets; do under_data "$s"; done) --max-size "$vocab_size" --temperature "$vocab_temperature" \
        --out "$data/chars.txt"
    stage_end 3
fi

if stage_begin 4 "CMVN statistics"; then
    stage_cmd "$train_cmd" "$exp/log/cmvn.log" python -m mslam.bin.compute_cmvn --no-progress \
        "$(under_data "${speech_sets%% *}")" "$data/cmvn.npz"
    stage_end 4
fi

if stage_begin 5 "pre-training ($pretrain_config)"; then
    mkdir -p "$run"
    cp "$data/chars.txt" "$data/cmvn.npz" "$run/"   # beside the checkpoints, for fine-tuning recipes
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
        data.speech.dirs="$(yaml_list $speech_sets)" data.text.dirs="$(yaml_list $text_sets)" \
        data.paired.dirs="$(yaml_list $paired_sets)" \
        trainer.device="$device" $pretrain_args
    stage_end 5
fi

if stage_begin 6 "report"; then
    stage_cmd "$train_cmd" "$exp/log/report.log" python -m mslam.bin.pretrain_report \
        --run "$(basename "$pretrain_config" .yaml)=$run" --out "$exp/RESULTS.md" --plot "$exp/pretrain_loss.png"
    echo "results: $exp/RESULTS.md"
    stage_end 6
fi
stages_summary
