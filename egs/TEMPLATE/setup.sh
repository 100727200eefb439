#!/usr/bin/env bash
# Create the skeleton of a new recipe: run.sh, links to the shared stages, the recipe's own db.sh (its
# corpus path), local/ scripts to fill in for the corpus, the task's configs and a README.
#
#   egs/TEMPLATE/setup.sh egs/<corpus>/<task>1 --task st|asr|intent|langid|pretrain
#
# Then write local/download.sh and local/data.sh (egs/TEMPLATE/README.md says what each must do) and
# run ./run.sh --help.
set -euo pipefail
usage="Usage: $0 egs/<corpus>/<task>1 --task st|asr|intent|langid|pretrain"
[ $# -eq 3 ] && [ "$2" = --task ] || { echo "$usage" >&2; exit 1; }
dest=$1 task=$3
# The configs are per task family: only the options the task reads.
case $task in
    st|asr) template=finetune conf=$task ;;
    intent|langid) template=finetune conf=cls ;;
    pretrain) template=pretrain conf=pretrain ;;
    *) echo "$0: unknown task '$task'; $usage" >&2; exit 1 ;;
esac
[ ! -e "$dest" ] || { echo "$0: $dest already exists; not touching it" >&2; exit 1; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
skeleton=$here/skeleton

mkdir -p "$dest/local" "$dest/conf/tuning"
to_template=$(realpath --relative-to="$dest" "$here")
# Shared, never edited for one recipe: linked. The recipe's own settings (db.sh, conf/) are files of its own.
for f in path.sh cmd.sh "$template.sh"; do
    ln -s "$to_template/$f" "$dest/$f"
done
corpus=$(basename "$(dirname "$(realpath "$dest")")")
name=$corpus/$(basename "$dest")
# The corpus's variable in db.sh: its dir name in capitals (egs/spoken-digits -> SPOKEN_DIGITS).
var=$(tr '[:lower:]' '[:upper:]' <<< "$corpus" | tr -c 'A-Z0-9\n' '_')
case $var in [0-9]*) var=CORPUS_$var ;; esac
fill() {
    sed -e "s|@TASK@|$task|g" -e "s|@NAME@|$name|g" -e "s|@CORPUS@|$corpus|g" -e "s|@VAR@|$var|g" \
        -e "s|@TO_TEMPLATE@|$to_template|g" "$1" > "$2"
}
fill "$skeleton/run_$template.sh" "$dest/run.sh"
fill "$skeleton/db.sh" "$dest/db.sh"
fill "$skeleton/local/download.sh" "$dest/local/download.sh"
fill "$skeleton/local/data_$template.sh" "$dest/local/data.sh"
fill "$skeleton/conf/tuning/tiny_$conf.yaml" "$dest/conf/tuning/tiny.yaml"
fill "$skeleton/conf/$conf.yaml" "$dest/conf/$task.yaml"
fill "$skeleton/README.md" "$dest/README.md"
chmod +x "$dest/run.sh" "$dest/local/download.sh" "$dest/local/data.sh"
echo "$0: created $dest ($task). Next: set \$$var in $dest/db.sh (where the corpus is, or goes),"
echo "    write $dest/local/download.sh and $dest/local/data.sh (see egs/TEMPLATE/README.md),"
echo "    then: cd $dest && ./run.sh --help"
