# Sourced by every recipe's run.sh (recipes symlink it): the toolkit's venv and tools/ on PATH.
# MAIN_ROOT is the repository root, found through the symlink, whatever the recipe's depth.
MAIN_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
export MAIN_ROOT
if [ -f "$MAIN_ROOT/tools/venv/bin/activate" ]; then
    # shellcheck disable=SC1091
    . "$MAIN_ROOT/tools/venv/bin/activate"
else
    echo "path.sh: $MAIN_ROOT/tools/venv is missing; run 'make install' in $MAIN_ROOT" >&2
    return 1
fi
export PATH="$MAIN_ROOT/tools:$PATH"
export PYTHONUNBUFFERED=1
# Sorting and comparisons in Kaldi tables are byte-wise.
export LC_ALL=C
