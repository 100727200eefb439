# Where each corpus lives (or will be downloaded to). Override any of them from the environment,
# e.g. `VOXPOPULI=/data/voxpopuli ./run.sh`. A recipe's download stage skips a corpus that is
# already complete at its path.
CORPORA_ROOT=${CORPORA_ROOT:-$PWD/downloads}
VOXPOPULI=${VOXPOPULI:-$CORPORA_ROOT/voxpopuli}
MC4=${MC4:-$CORPORA_ROOT/mc4}
COVOST2=${COVOST2:-$CORPORA_ROOT/covost2}
COMMONVOICE=${COMMONVOICE:-$CORPORA_ROOT/commonvoice}   # CoVoST 2 audio (Common Voice 4.0 clips)
FLEURS=${FLEURS:-$CORPORA_ROOT/fleurs}
MINDS14=${MINDS14:-$CORPORA_ROOT/minds14}
# Licensed corpora the paper also pre-trains on (no public download): point these at your copies.
MLS=${MLS:-}
BABEL=${BABEL:-}
