# Stage bookkeeping shared by every recipe (sourced by run.sh after parse_options.sh).
#
#   . "$MAIN_ROOT/tools/stages.sh"        # once, after parse_options.sh
#   if stage_begin 3 "extract features"; then
#       ...commands...
#       stage_end 3
#   fi
#
# A stage runs when stage <= N <= stop_stage. A finished stage leaves exp/.stages/N.done and is
# skipped on a later run, unless --stage was given on the command line: then every stage from
# --stage on is redone (its inputs may have changed). A stage that fails leaves no marker, so a
# killed or failed run redoes exactly the unfinished stage.
stage_dir=${stage_dir:-exp/.stages}
# parse_options.sh lists the options given on the command line in $options_given.
case " ${options_given:-} " in *" stage "*) stage_forced=true ;; *) stage_forced=false ;; esac
stage_t0=$(date +%s)

stage_begin() {
    local n=$1 name=$2
    [ "$n" -ge "$stage" ] && [ "$n" -le "$stop_stage" ] || return 1
    if [ -f "$stage_dir/$n.done" ] && [ "$stage_forced" = false ]; then
        echo "stage $n: $name: done earlier ($stage_dir/$n.done); rerun with --stage $n to redo it"
        return 1
    fi
    rm -f "$stage_dir/$n.done"
    echo "stage $n: $name ($(date '+%F %T'))"
    stage_start=$(date +%s)
    stage_current="$n ($name)"
    return 0
}

# Run one command of the current stage under a job launcher, its output in LOG; if it fails, stop the
# recipe with the stage and the log named (and the log's last lines, where the error usually is).
#   stage_cmd "$train_cmd" exp/log/data_prep.log local/data.sh --langs "de fr"
stage_cmd() {
    local launcher=$1 log=$2; shift 2
    if ! $launcher "$log" "$@"; then
        echo "stage ${stage_current:-?} failed; see $log" >&2
        [ -f "$log" ] && tail -n 5 "$log" | sed 's/^/    /' >&2
        exit 1
    fi
}

stage_end() {
    local n=$1
    mkdir -p "$stage_dir"
    date '+%F %T' > "$stage_dir/$n.done"
    echo "stage $n: finished in $(( $(date +%s) - stage_start )) s"
}

# Print the total time; call at the end of run.sh.
stages_summary() {
    echo "$(basename "$0"): done in $(( $(date +%s) - stage_t0 )) s"
}
