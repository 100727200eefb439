# The feature stage of both recipe templates (sourced by finetune.sh and pretrain.sh after stages.sh).
#   --feats-type fbank   80-d log-mel features are dumped once, as Kaldi ark/scp (kaldiio), to
#                        $dumpdir/fbank/<set>: a data dir with the set's tables, feats.scp,
#                        utt2num_frames and cmvn.npz (the set's global mean/variance statistics);
#                        training and decoding read them instead of decoding and resampling audio
#                        at every step (the same numbers: tested)
#   --feats-type raw     nothing is dumped; features are computed from the audio on the fly
# A set is a dir under $data (train, speech/train) or an absolute path.

check_feats_type() {
    case $feats_type in fbank|raw) ;;
        *) echo "$0: --feats-type must be fbank (dump features once) or raw (compute them from the audio at" \
                "every step); got '$feats_type'" >&2; exit 1 ;;
    esac
}

# The data dir a set is prepared in (stage 2's output).
set_dir() {
    case $1 in /*) echo "$1" ;; *) echo "$data/$1" ;; esac
}

# The data dir training and decoding read a set from: its dumped features, or the prepared dir itself.
feats_dir() {
    if [ "$feats_type" = raw ]; then
        set_dir "$1"
    else
        case $1 in /*) echo "$dumpdir/fbank/external$1" ;; *) echo "$dumpdir/fbank/$1" ;; esac
    fi
}

# Dump the fbank features of the sets in one set of $nj jobs ($train_cmd launches them: run.pl here,
# slurm.pl on a cluster; the driver that plans and merges them runs here). Logs: $exp/log/fbank*.
# Audio at another rate than 16 kHz is resampled on load; the stage says so.
dump_fbank() {
    local pairs=() set
    for set in "$@"; do
        pairs+=("$(set_dir "$set")" "$(feats_dir "$set")")
    done
    stage_cmd run.pl "$exp/log/fbank.log" python -m mslam.bin.compute_fbank "${pairs[@]}" --nj "$nj" \
        --cmd "$train_cmd" --log-dir "$exp/log/fbank"
    # What the user should know without reading the log (audio resampled from another rate).
    sed -n "s/^compute_fbank: note: /stage $feats_stage: note: /p" "$exp/log/fbank.log"
}

# Before a stage that reads features: stop, saying what to do, if the feature stage has not made them.
require_feats() {
    local set dir
    [ "$feats_type" = fbank ] || return 0
    for set in "$@"; do
        dir=$(feats_dir "$set")
        if [ ! -f "$dir/feats.scp" ]; then
            echo "$0: --feats-type fbank, but $dir has no dumped features; run the feature stage" \
                 "(--stage $feats_stage), or use --feats-type raw" >&2
            exit 1
        fi
    done
}
