# Where the corpus of @NAME@ lives. This file belongs to the recipe: set the path here, or from the
# environment (`@VAR@=/data/@CORPUS@ ./run.sh`). The settings every recipe shares (CORPORA_ROOT, the
# paper's corpora) come from egs/TEMPLATE/db.sh, which is not edited for one recipe.
. "$(dirname "${BASH_SOURCE[0]}")/@TO_TEMPLATE@/db.sh"

# The corpus: where local/download.sh puts it, or where it already is.
@VAR@=${@VAR@:-$CORPORA_ROOT/@CORPUS@}
# Where local/download.sh fetches it from (empty: a corpus already on disk).
@VAR@_URL=${@VAR@_URL:-}
