#!/usr/bin/env bash
# Kaldi data-dir utilities from a recipe: validate | fix | subset | combine (see --help).
#   tools/data_dir.sh validate data/train
#   tools/data_dir.sh subset data/train data/train_de --langs de
exec python -m mslam.bin.data_dir "$@"
