# Where each corpus lives (or will be downloaded to), and where it is downloaded from. Override any of
# them from the environment, e.g. `VOXPOPULI=/data/voxpopuli ./run.sh`. A download stage fetches only
# what is missing at the path, so pointing a variable at a complete copy downloads nothing.
# One download per corpus for all recipes: egs/downloads unless CORPORA_ROOT says otherwise.
egs_dir=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
CORPORA_ROOT=${CORPORA_ROOT:-$egs_dir/downloads}
VOXPOPULI=${VOXPOPULI:-$CORPORA_ROOT/voxpopuli}
MC4=${MC4:-$CORPORA_ROOT/mc4}
MC4_TEXT=${MC4_TEXT:-$egs_dir/mc4/text1/data/text}   # egs/mc4/text1's sentence shards (for pre-training)
COVOST2=${COVOST2:-$CORPORA_ROOT/covost2}
COMMONVOICE=${COMMONVOICE:-$CORPORA_ROOT/commonvoice}   # CoVoST 2 audio (Common Voice 4.0 clips)
FLEURS=${FLEURS:-$CORPORA_ROOT/fleurs}
MINDS14=${MINDS14:-$CORPORA_ROOT/minds14}

# Download URL bases (a mirror, or file:///path for a local copy of the server's layout).
VOXPOPULI_URL=${VOXPOPULI_URL:-https://dl.fbaipublicfiles.com/voxpopuli}
MC4_URL=${MC4_URL:-https://huggingface.co/datasets/allenai/c4/resolve/1ddc917116b730e1859edef32896ec5c16be51d0}
COVOST2_URL=${COVOST2_URL:-https://dl.fbaipublicfiles.com/covost}
# Common Voice 4.0 is no longer served by Mozilla's bucket: point COMMONVOICE at a copy if this fails.
COMMONVOICE_URL=${COMMONVOICE_URL:-https://voice-prod-bundler-ee1969a6ce8178826482b88e843c335139bd3fb4.s3.amazonaws.com}
FLEURS_URL=${FLEURS_URL:-https://huggingface.co/datasets/google/fleurs/resolve/main}
MINDS14_URL=${MINDS14_URL:-https://poly-public-data.s3.amazonaws.com/MInDS-14}

# Corpora the paper also pre-trains on that have no recipe here (Common Voice beyond CoVoST, MLS, and
# the LDC-licensed BABEL): prepare them as Kaldi data dirs and list them here (space-separated);
# egs/voxpopuli/pt1 adds them to its unlabeled speech (EXTRA_SPEECH_DIRS) and paired data (EXTRA_PAIRED_DIRS,
# which need `text` and `utt2lang`).
EXTRA_SPEECH_DIRS=${EXTRA_SPEECH_DIRS:-}
EXTRA_PAIRED_DIRS=${EXTRA_PAIRED_DIRS:-}
