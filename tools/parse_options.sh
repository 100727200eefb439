# parse_options.sh: command-line option parser for recipe scripts (Kaldi/ESPnet style).
#
# This file is meant to be *sourced* by a bash script after the script has set
# every option variable to its default value:
#
#     stage=1
#     stop_stage=100
#     nj=4
#     use_gpu=false
#     help_message="Usage: $0 [options] <data-dir>"   # optional
#     . tools/parse_options.sh || exit 1
#
# Then `./run.sh --stage 3 --stop-stage 5 --nj=8 data/train` sets stage=3,
# stop_stage=5, nj=8 and leaves "data/train" in "$@".
#
# Rules:
#   --name VALUE, --name=VALUE  set variable `name`; dashes in the name become
#                               underscores (--stop-stage and --stop_stage are the
#                               same). The variable must already be set when this
#                               file is sourced, otherwise it is an error.
#   true/false options          a variable whose current value is `true` or `false`
#                               only accepts the values true and false.
#   --config FILE               source FILE (lines of name=value) before any other
#                               option is applied; may be given several times.
#   --help, -h                  print $help_message (if set) and every option the
#                               script declares with its current value; exit 0.
#   --                          ends the options; so does the first argument that
#                               does not start with "--".
# After parsing, $options_given holds the names (underscore form, space-separated,
# each once) of the variables set by command-line options, e.g. "stage nj", so a
# script can tell an explicit --stage 1 from the default.
# Errors (unknown option, missing value, bad boolean, unreadable config) are
# reported on stderr and exit 1. The options shifted off are removed from "$@";
# positional arguments are left in place.
#
# The options listed by --help are found by scanning the calling script for lines
# `name=value` (optionally `export name=value`) that come before the line that
# sources this file, keeping those whose variable is set (ALL_CAPS names such as
# LC_ALL are taken for environment settings and not listed).

# ---- helpers (removed again at the end of this file) -----------------------

__po_caller=${BASH_SOURCE[1]:-$0}

# Print, one per line, the option variables declared by the calling script.
__po_declared_options() {
    local __po_line __po_name __po_seen=" " __po_heredoc=""
    local __po_re_source='^[[:space:]]*(\.|source)[[:space:]]+[^[:space:]]*parse_options\.sh'
    local __po_re_assign='^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)='
    local __po_re_heredoc="(^|[^<])<<-?[[:space:]]*[\"']?([A-Za-z_][A-Za-z0-9_]*)"
    if [ ! -f "$__po_caller" ] || [ ! -r "$__po_caller" ]; then
        return 0
    fi
    while IFS= read -r __po_line || [ -n "$__po_line" ]; do
        if [ -n "$__po_heredoc" ]; then
            # Skip the body of a here-document (e.g. a help_message=$(cat <<EOF ...).
            if [[ "$__po_line" =~ ^[[:space:]]*"$__po_heredoc"[[:space:]]*$ ]]; then
                __po_heredoc=""
            fi
            continue
        fi
        if [[ "$__po_line" =~ $__po_re_source ]]; then
            break
        fi
        if [[ "$__po_line" =~ $__po_re_assign ]]; then
            __po_name=${BASH_REMATCH[2]}
            # ALL_CAPS names (LC_ALL, SECONDS, ...) are environment settings, not options.
            if [[ "$__po_seen" != *" $__po_name "* ]] && [ "$__po_name" != help_message ] \
                && [[ "$__po_name" =~ [a-z] ]] && [[ -v $__po_name ]]; then
                __po_seen+="$__po_name "
                printf '%s\n' "$__po_name"
            fi
        fi
        if [[ "$__po_line" =~ $__po_re_heredoc ]]; then
            __po_heredoc=${BASH_REMATCH[2]}
        fi
    done < "$__po_caller"
}

# Show a value so that empty values and values with blanks are visible.
__po_show() {
    if [ -z "$1" ]; then
        printf '""'
    elif [[ "$1" =~ [[:space:]] ]]; then
        printf '"%s"' "$1"
    else
        printf '%s' "$1"
    fi
}

__po_print_help() {
    local __po_name __po_value __po_flag __po_width=14 __po_names=()
    if [ -n "${help_message:-}" ]; then
        printf '%b\n\n' "$help_message"
    fi
    mapfile -t __po_names < <(__po_declared_options)
    for __po_name in ${__po_names[@]+"${__po_names[@]}"}; do
        __po_flag="--${__po_name//_/-}"
        if [ ${#__po_flag} -gt $__po_width ]; then __po_width=${#__po_flag}; fi
    done
    echo "Options (current values; '-' and '_' are interchangeable in option names):"
    for __po_name in ${__po_names[@]+"${__po_names[@]}"}; do
        __po_value=${!__po_name}
        __po_flag="--${__po_name//_/-}"
        case "$__po_value" in
            true|false) printf '  %-*s %s   (true|false)\n' "$__po_width" "$__po_flag" "$__po_value" ;;
            *) printf '  %-*s %s\n' "$__po_width" "$__po_flag" "$(__po_show "$__po_value")" ;;
        esac
    done
    printf '  %-*s %s\n' "$__po_width" "--config FILE" "source FILE (name=value lines) before other options"
    printf '  %-*s %s\n' "$__po_width" "--help, -h" "print this help and exit"
}

__po_valid_options_hint() {
    local __po_name __po_list=""
    while IFS= read -r __po_name; do
        __po_list+=" --${__po_name//_/-}"
    done < <(__po_declared_options)
    if [ -n "$__po_list" ]; then
        echo "parse_options.sh: valid options are:$__po_list --config --help (run '$0 --help' for details)" >&2
    else
        echo "parse_options.sh: run '$0 --help' for the valid options" >&2
    fi
}

# ---- pass 1: source --config files first ----------------------------------

__po_configs=()
__po_args=("$@")
__po_i=0
while [ "$__po_i" -lt ${#__po_args[@]} ]; do
    __po_arg=${__po_args[$__po_i]}
    case "$__po_arg" in
        --config=*)
            __po_configs+=("${__po_arg#--config=}")
            __po_i=$((__po_i + 1)) ;;
        --config)
            if [ $((__po_i + 1)) -ge ${#__po_args[@]} ]; then
                break  # reported as a missing value in pass 2
            fi
            __po_configs+=("${__po_args[$((__po_i + 1))]}")
            __po_i=$((__po_i + 2)) ;;
        --help|-h) __po_i=$((__po_i + 1)) ;;
        --) break ;;
        --*=*) __po_i=$((__po_i + 1)) ;;
        --*) __po_i=$((__po_i + 2)) ;;
        *) break ;;
    esac
done
for __po_arg in ${__po_configs[@]+"${__po_configs[@]}"}; do
    if [ ! -f "$__po_arg" ] || [ ! -r "$__po_arg" ]; then
        echo "parse_options.sh: cannot read config file '$__po_arg' (given with --config)" >&2
        exit 1
    fi
    # shellcheck disable=SC1090
    . "$__po_arg"
done

# ---- pass 2: apply the options in order -----------------------------------

options_given=""

while [ $# -gt 0 ]; do
    case "$1" in
        --)
            shift
            break ;;
        --help|-h)
            __po_print_help
            exit 0 ;;
        --*=*)
            __po_opt=${1%%=*}
            __po_val=${1#*=}
            __po_nshift=1 ;;
        --*)
            __po_opt=$1
            __po_val=""
            __po_nshift=2 ;;
        *)
            break ;;
    esac
    __po_name=${__po_opt#--}
    __po_name=${__po_name//-/_}
    if [ "$__po_name" != config ]; then
        if [[ ! "$__po_name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [[ ! -v $__po_name ]] \
            || [ "$__po_name" = help_message ]; then
            echo "parse_options.sh: invalid option $__po_opt" >&2
            __po_valid_options_hint
            exit 1
        fi
    fi
    if [ "$__po_nshift" -eq 2 ]; then
        if [ $# -lt 2 ]; then
            echo "parse_options.sh: option $__po_opt needs a value ($__po_opt VALUE or $__po_opt=VALUE)" >&2
            exit 1
        fi
        __po_val=$2
    fi
    if [ "$__po_name" = config ]; then
        # Already sourced in pass 1; also record it if the script declared `config`.
        if [[ -v config ]]; then
            config=$__po_val
        fi
        shift "$__po_nshift"
        continue
    fi
    case "${!__po_name}" in
        true|false)
            case "$__po_val" in
                true|false) ;;
                *)
                    echo "parse_options.sh: option $__po_opt takes true or false, not '$__po_val'" >&2
                    exit 1 ;;
            esac ;;
    esac
    printf -v "$__po_name" '%s' "$__po_val"
    if [[ " $options_given " != *" $__po_name "* ]]; then
        options_given=${options_given:+$options_given }$__po_name
    fi
    shift "$__po_nshift"
done

unset -f __po_declared_options __po_show __po_print_help __po_valid_options_hint
unset __po_caller __po_configs __po_args __po_i __po_arg __po_opt __po_val __po_nshift __po_name
true
