#!/usr/bin/env bash
# mC4 character text for mSLAM pre-training: download the multilingual shards of the chosen languages,
# clean them into per-language sentence shards, and build the character vocabulary (the paper: 4096
# characters over 101 languages, languages weighted with temperature T = 3). egs/voxpopuli/pt1 reads
# data/text/{train,dev} from here.
#
#   ./run.sh                                   # 101 languages, 1 train shard each (about 30 GB)
#   ./run.sh --langs "de ru ar" --shards 4     # three languages, 4 train shards each
#
# Stages:
#   1  download      the first --shards train and --validation-shards validation shards per language
#   2  text shards   NFKC, sentence splitting, length filter, de-duplication: data/text/{train,dev}/<lang>.txt
#                    and data/text/stats.json. A job array of --nj jobs ($train_cmd: run.pl here, slurm.pl on
#                    a cluster) reads the shards, each job every nj-th one; then one job de-duplicates and writes
#   3  vocabulary    data/chars.txt
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
. ./path.sh
. ./cmd.sh
. ./db.sh

stage=1
stop_stage=100
langs=                  # mC4 codes (empty: the paper's 101 languages)
shards=1                # train shards per language (of 2 to 11264; about 0.1-0.4 GB each)
validation_shards=1
max_sentences_per_lang= # cap per language and split (empty: all)
min_chars=20            # shortest sentence kept, scaled per script (Chinese, Japanese 5; Korean 8; Thai 12)
max_chars=512           # the paper's text sequences: 512 characters
vocab_size=4096         # paper: 4096 characters
vocab_temperature=3.0   # paper: T = 3
checksums=              # sha256sum-format file to verify the download against
nj=4                    # jobs reading the shards (with --max-sentences-per-lang: languages at once)
data=data
exp=exp
help_message="Usage: $0 [--langs \"de ru\"] [--shards N] [options]
  Stages: 1 download, 2 text shards, 3 character vocabulary"
. "$MAIN_ROOT/tools/parse_options.sh"
if [ $# -gt 0 ]; then echo "$0: unexpected argument(s): $*" >&2; echo "$help_message" >&2; exit 1; fi
stage_dir=$exp/.stages
. "$MAIN_ROOT/tools/stages.sh"
lang_opts=(); [ -z "$langs" ] || lang_opts=(--langs "${langs// /,}")

if stage_begin 1 "download"; then
    mkdir -p "$exp"
    python -m mslam.bin.prepare_mc4 files "${lang_opts[@]}" --shards "$shards" --validation-shards "$validation_shards" \
        > "$exp/download.list"
    stage_cmd "$train_cmd" "$exp/log/download.log" python -m mslam.bin.download --base-url "$MC4_URL" --out "$MC4" \
        --list "$exp/download.list" --no-progress ${checksums:+--checksums "$checksums"}
    stage_end 1
fi

if stage_begin 2 "text shards"; then
    prepare=(python -m mslam.bin.prepare_mc4 prepare --root "$MC4" --out "$data/text" "${lang_opts[@]}"
             --min-chars "$min_chars" --max-chars "$max_chars" --no-progress)
    if [ -n "$max_sentences_per_lang" ]; then
        # A cap reads each language in one pass that stops at it: no shards to spread over jobs.
        stage_cmd "$train_cmd" "$exp/log/text.log" "${prepare[@]}" --nj "$nj" \
            --max-sentences-per-lang "$max_sentences_per_lang"
    else
        # Job j reads every nj-th shard into $data/text/.work (logs: text.<j>.log); the call after it reads
        # none again, finds the repeats of each language and writes the text shards.
        stage_cmd "$train_cmd JOB=1:$nj" "$exp/log/text.JOB.log" "${prepare[@]}" --part "JOB/$nj"
        stage_cmd "$train_cmd" "$exp/log/text.log" "${prepare[@]}" --nj "$nj"
    fi
    stage_end 2
fi

if stage_begin 3 "character vocabulary"; then
    stage_cmd "$train_cmd" "$exp/log/vocab.log" python -m mslam.bin.build_char_vocab --text-shards "$data/text/train" \
        --max-size "$vocab_size" --temperature "$vocab_temperature" --out "$data/chars.txt"
    stage_end 3
fi
stages_summary
