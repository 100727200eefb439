#!/usr/bin/env bash
# The stages every fine-tuning recipe shares (ST, ASR, intent, LangID), in the manner of ESPnet's asr.sh.
# A recipe's run.sh fixes its task and corpus options and passes the user's on:
#
#   ./finetune.sh --task st --langs "fr de es" --configs "conf/st.yaml conf/st_joint.yaml" "$@"
#
# What the recipe itself provides (see egs/TEMPLATE/README.md):
#   local/download.sh [--langs L] [--checksums F]           fetch the corpus (or check an existing copy)
#   local/data.sh [--langs L] --data DIR [--nj N]           write DIR/{train,dev,test} Kaldi data dirs
#
# Stages:
#   1  download            local/download.sh
#   2  data preparation    local/data.sh; every data dir is validated
#   3  features and        --feats-type fbank: every set's fbank dumped once (ark/scp under $dumpdir/fbank);
#      statistics          global CMVN of the training set and, for st, the encoder's characters
#                          (with --init: the pre-training run's own)
#   4  target vocabulary   SentencePiece (st), graphemes (asr) or class labels (intent, langid)
#   5  fine-tuning         one experiment per config in --configs (torchrun over --ngpu GPUs)
#   6  decoding            every --test-sets dir, with each experiment's final (averaged) model
#   7  scoring             scores per language and the paper's table: $exp/RESULTS.md
# Stages 1-3 are done once per recipe; 4-7 once per experiment (exp/<config name>[_<tag>]/.stages).
set -euo pipefail

stage=1
stop_stage=100
task=                 # st | asr | intent | langid
langs=                # languages to download and prepare (the corpus's codes; empty: the recipe's default)
configs=              # fine-tuning configs (YAML); each is an experiment named after its file
tag=                  # added to every experiment's name (exp/<config>_<tag>, its row in RESULTS.md), to tell
                      # runs of one config apart (e.g. --tag scratch, --tag pretrained)
corpus_name=          # the corpus's name in RESULTS.md's headers (default: the recipe's corpus dir, egs/<corpus>/)
init=                 # pre-trained encoder: a pre-training run dir, checkpoint dir or .pt (empty: from scratch)
model_from=           # from scratch: the encoder of this pre-training config (default: the config's)
cmvn=                 # global CMVN statistics (cmvn.npz); default: the pre-training run's, else stage 3's
train_set=train
dev_set=dev
test_sets=test
table=                # the paper's table: st | asr | cls (default from --task)
groups=               # st: JSON of language groups for BLEU averages (default: $data/groups.json, if
                      # local/data.sh wrote one)
finetune_args=        # extra config overrides for every experiment: "KEY=VALUE KEY=VALUE" (no --set)
decode_args=          # extra options of mslam.bin.decode (e.g. "--beam 10")
checksums=            # sha256sum-format file to verify the download against
local_opts=           # options of both local/download.sh and local/data.sh (e.g. "--years 2019,2020")
data_opts=            # options of local/data.sh only (e.g. "--seed 7")
nj=4                  # parallel jobs of data preparation and feature extraction
feats_type=fbank      # fbank: dump features once in stage 3 (32 kB per second of audio); raw: compute them
                      # from the audio at every step
ngpu=auto             # GPUs per fine-tuning job: auto (every GPU of this machine, the CPU if none), or N (0: CPU);
                      # > 1 runs torchrun
data=data
dumpdir=dump          # dumped features: $dumpdir/fbank/<set>
exp=exp
help_message="Usage: $0 --task st|asr|intent|langid --configs \"conf/x.yaml ...\" [options]
  Stages: 1 download, 2 data preparation, 3 features and statistics, 4 target vocabulary, 5 fine-tuning, 6 decoding,
          7 scoring"

. ./path.sh
. ./cmd.sh
. "$MAIN_ROOT/tools/parse_options.sh"
if [ $# -gt 0 ]; then echo "$0: unexpected argument(s): $*" >&2; echo "$help_message" >&2; exit 1; fi
case $task in st|asr|intent|langid) ;; *) echo "$0: --task must be st, asr, intent or langid (got '$task')" >&2; exit 1 ;; esac
[ -n "$configs" ] || { echo "$0: --configs names no fine-tuning config" >&2; exit 1; }
for config in $configs; do
    [ -f "$config" ] || { echo "$0: --configs: $config: no such file" >&2; exit 1; }
done
[ -n "$table" ] || case $task in st) table=st ;; asr) table=asr ;; *) table=cls ;; esac
[ -n "$corpus_name" ] || corpus_name=$(basename "$(dirname "$PWD")")
stage_dir=$exp/.stages
. "$MAIN_ROOT/tools/stages.sh"
. "$MAIN_ROOT/egs/TEMPLATE/corpus_stages.sh"
. "$MAIN_ROOT/egs/TEMPLATE/features.sh"
. "$MAIN_ROOT/egs/TEMPLATE/ngpu.sh"
check_feats_type
check_ngpu
feats_stage=3
device=cpu   # until resolve_ngpu, before the stages that train or decode
mkdir -p "$exp"

corpus_stages $(for set in $train_set $dev_set $test_sets; do echo "$data/$set"; done)

# A file a pre-training run leaves beside its checkpoints (egs/TEMPLATE/pretrain.sh puts cmvn.npz and the
# character vocabulary chars.txt there), found from the run dir, a checkpoint dir or a .pt file inside it.
pretrained_file() {
    local dir=$1 name=$2
    [ -d "$dir" ] || dir=$(dirname "$dir")
    for d in "$dir" "$(dirname "$dir")" "$(dirname "$(dirname "$dir")")"; do
        [ -f "$d/$name" ] && { echo "$d/$name"; return 0; }
    done
    return 0
}
chars=
if [ -n "$init" ]; then
    [ -n "$cmvn" ] || cmvn=$(pretrained_file "$init" cmvn.npz)
    # Empty when not found: then mslam.bin.finetune looks where the run's own config says.
    chars=$(pretrained_file "$init" chars.txt)
elif [ "$task" = st ]; then
    chars=$data/$train_set/chars.txt   # from scratch, MT text uses the training transcripts' characters
fi
# The training set's own statistics: the feature dump writes them (over every utterance) beside the
# features; with raw features stage 3 computes them from a sample of the audio.
own_cmvn=$(feats_dir "$train_set")/cmvn.npz
if [ -z "$cmvn" ]; then
    [ -z "$init" ] || echo "no cmvn.npz beside $init: the fine-tuning data's own statistics are used" >&2
    cmvn=$own_cmvn
fi

if stage_begin 3 "features and statistics"; then
    if [ "$feats_type" = fbank ]; then
        # shellcheck disable=SC2086
        dump_fbank "$train_set" "$dev_set" $test_sets
    elif [ "$cmvn" = "$own_cmvn" ]; then
        stage_cmd "$train_cmd" "$exp/log/cmvn.log" python -m mslam.bin.compute_cmvn "$data/$train_set" "$cmvn"
    fi
    [ "$cmvn" = "$own_cmvn" ] || echo "stage 3: using $cmvn"
    if [ "$chars" = "$data/$train_set/chars.txt" ]; then
        stage_cmd "$train_cmd" "$exp/log/chars.log" python -m mslam.bin.build_char_vocab \
            --data-dirs "$data/$train_set" --out "$chars"
    fi
    stage_end 3
fi

init_opts=(); [ -z "$init" ] || init_opts=(--init "$init")
abspath() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
more_opts=(); [ -z "$chars" ] || [ "$task" != st ] || more_opts=(data.char_vocab="$(abspath "$chars")")
[ -z "$model_from" ] || more_opts+=(model_from="$model_from")
if [ "$stop_stage" -ge 4 ] && [ "$stage" -le 6 ]; then
    # shellcheck disable=SC2086
    require_feats "$train_set" "$dev_set" $test_sets
fi
if [ "$stop_stage" -ge 5 ] && [ "$stage" -le 6 ]; then
    resolve_ngpu
fi
if [ "$ngpu" != auto ] && [ "$ngpu" -gt 1 ]; then
    finetune=(torchrun --standalone --nproc-per-node "$ngpu" -m mslam.bin.finetune)
else
    finetune=(python -m mslam.bin.finetune)
fi
# Where training reads its sets: the dumped features, or the prepared dirs.
feats_root=$data; [ "$feats_type" = raw ] || feats_root=$dumpdir/fbank
scored=false   # the table is redone when some experiment was scored in this run (or is missing)
for config in $configs; do
    name=$(basename "$config" .yaml)${tag:+_$tag}
    dir=$exp/$name
    stage_dir=$dir/.stages   # stages 4-7 are done once per experiment
    # Everything this recipe decides for the run; the config holds the rest.
    run_opts=(--config "$config" --task "$task" --output-dir "$dir" --set data.root="$feats_root"
              data.train="[$train_set]" data.dev="[$dev_set]" data.cmvn="$(abspath "$cmvn")"
              trainer.device="$device" "${more_opts[@]}" $finetune_args)

    if stage_begin 4 "target vocabulary ($name)"; then
        stage_cmd "$train_cmd" "$dir/log/targets.log" python -m mslam.bin.finetune "${init_opts[@]}" \
            "${run_opts[@]}" --targets-only
        stage_end 4
    fi

    if stage_begin 5 "fine-tuning ($name)"; then
        stage_cmd "$cuda_cmd --gpu $ngpu" "$dir/log/finetune.log" "${finetune[@]}" "${init_opts[@]}" "${run_opts[@]}" \
            --resume --no-progress
        stage_end 5
    fi

    if stage_begin 6 "decoding ($name: $test_sets)"; then
        for set in $test_sets; do
            # shellcheck disable=SC2086
            stage_cmd "$cuda_cmd --gpu $((ngpu > 0))" "$dir/decode_$set/log/decode.log" python -m mslam.bin.decode --exp-dir "$dir" \
                --data "$(feats_dir "$set")" --out-dir "$dir/decode_$set" --device "$device" --no-progress $decode_args
        done
        stage_end 6
    fi

    if stage_begin 7 "scoring ($name)"; then
        [ -n "$groups" ] || [ ! -f "$data/groups.json" ] || groups=$data/groups.json
        group_opts=(); [ -z "$groups" ] || group_opts=(--groups "$groups")
        for set in $test_sets; do
            stage_cmd "$train_cmd" "$dir/decode_$set/log/score.log" python -m mslam.bin.score --task "$task" \
                --data "$data/$set" --hyp "$dir/decode_$set/hyp" "${group_opts[@]}"
        done
        scored=true
        stage_end 7
    fi
done

# The paper's table over every experiment scored in $exp so far (this run's --configs and earlier ones):
# a row per experiment (asr: a column per test set).
scores=()
for set in $test_sets; do
    for json in "$exp"/*/decode_"$set"/scores.json; do
        [ -f "$json" ] || continue
        label=$(basename "$(dirname "$(dirname "$json")")")
        if [ "$table" = asr ]; then label="$label:$set"; elif [ "$(wc -w <<< "$test_sets")" -gt 1 ]; then label="$label/$set"; fi
        scores+=(--model "$label=$json")
    done
done
if [ ${#scores[@]} -gt 0 ] && { [ "$scored" = true ] || [ ! -f "$exp/RESULTS.md" ]; }; then
    python -m mslam.bin.paper_tables --kind "$table" --corpus "$corpus_name" "${scores[@]}" --out "$exp/RESULTS.md" \
        --json "$exp/RESULTS.json"
    echo "results: $exp/RESULTS.md"
fi
stages_summary
