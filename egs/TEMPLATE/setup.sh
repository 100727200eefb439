#!/usr/bin/env bash
# Create the skeleton of a new recipe: run.sh, links to the shared stages and settings, local/ scripts
# to fill in for the corpus, a tiny test config and a README.
#
#   egs/TEMPLATE/setup.sh egs/<corpus>/<task>1 --task st|asr|intent|langid|pretrain
#
# Then write local/download.sh and local/data.sh (egs/TEMPLATE/README.md says what each must do) and
# run ./run.sh --help.
set -euo pipefail
usage="Usage: $0 egs/<corpus>/<task>1 --task st|asr|intent|langid|pretrain"
[ $# -eq 3 ] && [ "$2" = --task ] || { echo "$usage" >&2; exit 1; }
dest=$1 task=$3
case $task in st|asr|intent|langid) template=finetune ;; pretrain) template=pretrain ;;
    *) echo "$0: unknown task '$task'; $usage" >&2; exit 1 ;; esac
[ ! -e "$dest" ] || { echo "$0: $dest already exists; not touching it" >&2; exit 1; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
skeleton=$here/skeleton

mkdir -p "$dest/local" "$dest/conf/tuning"
to_template=$(realpath --relative-to="$dest" "$here")
for f in path.sh cmd.sh db.sh "$template.sh"; do
    ln -s "$to_template/$f" "$dest/$f"
done
name=$(basename "$(dirname "$(realpath "$dest")")")/$(basename "$dest")
fill() { sed -e "s|@TASK@|$task|g" -e "s|@NAME@|$name|g" "$1" > "$2"; }
fill "$skeleton/run_$template.sh" "$dest/run.sh"
fill "$skeleton/local/download.sh" "$dest/local/download.sh"
fill "$skeleton/local/data_$template.sh" "$dest/local/data.sh"
fill "$skeleton/conf/tuning/tiny_$template.yaml" "$dest/conf/tuning/tiny.yaml"
fill "$skeleton/README.md" "$dest/README.md"
chmod +x "$dest/run.sh" "$dest/local/download.sh" "$dest/local/data.sh"
echo "$0: created $dest ($task). Next: write $dest/local/download.sh and $dest/local/data.sh"
echo "    (see egs/TEMPLATE/README.md), then: cd $dest && ./run.sh --help"
