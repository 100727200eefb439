# Stages 1 and 2 of every recipe template (sourced by finetune.sh and pretrain.sh after stages.sh):
# the corpus's own local/download.sh and local/data.sh, called with the options every template passes,
# then a check of the data dirs they wrote.
#   corpus_stages data/train data/dev ...     # the data dirs local/data.sh must write
corpus_stages() {
    local lang_opts=() checksum_opts=()
    [ -z "$langs" ] || lang_opts=(--langs "$langs")
    [ -z "$checksums" ] || checksum_opts=(--checksums "$checksums")
    if stage_begin 1 "download"; then
        # Downloads resume where they stopped; files already there (and verified) are not fetched again.
        # shellcheck disable=SC2086
        stage_cmd "$train_cmd" "$exp/log/download.log" local/download.sh "${lang_opts[@]}" "${checksum_opts[@]}" \
            $local_opts
        stage_end 1
    fi
    if stage_begin 2 "data preparation"; then
        # local/data.sh runs here: it may launch its own jobs through $train_cmd (a job array over the
        # languages: run.pl here, slurm.pl on a cluster), which a job of $train_cmd could not do well.
        # shellcheck disable=SC2086
        stage_cmd run.pl "$exp/log/data.log" local/data.sh "${lang_opts[@]}" --data "$data" --nj "$nj" \
            $local_opts $data_opts
        # The batch sampler needs each utterance's length: utt2dur from the decoded audio if none is given
        # (empty, cut-short or non-finite audio then stops the stage here, naming the files).
        stage_cmd "$train_cmd" "$exp/log/validate.log" python -m mslam.bin.data_dir validate --add-durations \
            --nj "$nj" "$@"
        # Transcripts with characters of another script, or empty, are listed in the log (not removed:
        # `python -m mslam.bin.data_dir scripts --action drop DIR` does that).
        stage_cmd "$train_cmd" "$exp/log/scripts.log" python -m mslam.bin.data_dir scripts "$@"
        stage_end 2
    fi
}
