# The VoxPopuli selection of both local scripts (sourced after parse_options.sh): the options of the
# unlabeled part, and those of the transcribed part, whose languages are the chosen ones that have
# transcripts (VoxPopuli transcribes 16 of its 23 languages).
years_opt=(); [ -z "$years" ] || years_opt=(--years "${years// /,}")
unlabelled=("${years_opt[@]}"); [ "$v2" = false ] || unlabelled+=(--v2)
asr=("${years_opt[@]}")
if [ -n "$langs" ]; then
    unlabelled+=(--langs "${langs// /,}")
    asr_langs=$(python -c 'import sys; from mslam.data.corpora.voxpopuli import ASR_LANGUAGES as A
print(",".join(l for l in sys.argv[1].replace(",", " ").split() if l in A))' "$langs")
    [ -n "$asr_langs" ] || { echo "$0: none of --langs '$langs' has VoxPopuli transcripts (paired data)" >&2; exit 1; }
    asr+=(--langs "$asr_langs")
fi
