"""Kaldi data-dir utilities: validate, fix, subset, combine.

    python -m mslam.bin.data_dir validate data/train
    python -m mslam.bin.data_dir fix data/train                  # sort, drop partial utterances
    python -m mslam.bin.data_dir subset data/train data/dev100 --first 100
    python -m mslam.bin.data_dir subset data/train data/de --langs de [--per-lang 500]
    python -m mslam.bin.data_dir subset data/train data/r --random 1000 --seed 3
    python -m mslam.bin.data_dir subset data/train data/x --utt-list ids.txt
    python -m mslam.bin.data_dir combine data/all data/a data/b ...
    python -m mslam.bin.data_dir validate --add-durations [--nj 4] data/train data/dev   # + utt2dur where no lengths
    python -m mslam.bin.data_dir validate --add-durations --quick data/train   # durations from the headers only

--add-durations decodes the audio of a dir without lengths (its utt2dur is what training will read) and
names every utterance whose file is empty, cut short or holds NaN/inf samples; --quick reads only the
headers (empty and cut-short WAV files are still found).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mslam.data.kaldi import (DataDir, DataDirError, add_durations, combine_data_dirs, fix_data_dir,
                              subset_data_dir)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="data_dir", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="check every table and their agreement")
    v.add_argument("dirs", type=Path, nargs="+")
    v.add_argument("--add-durations", action="store_true",
                   help="write utt2dur (from the decoded audio) into a dir that has no utterance lengths")
    v.add_argument("--quick", action="store_true", help="with --add-durations: read the audio headers only")
    v.add_argument("--nj", type=int, default=1, help="with --add-durations: files decoded at once")
    sub.add_parser("fix", help="sort tables, keep utterances present in all of them").add_argument("dir", type=Path)
    s = sub.add_parser("subset", help="copy a subset")
    s.add_argument("src", type=Path)
    s.add_argument("dst", type=Path)
    s.add_argument("--first", type=int)
    s.add_argument("--random", type=int, dest="random_n")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--utt-list", type=Path, help="file with one utterance id per line")
    s.add_argument("--langs", help="comma-separated language codes (needs utt2lang)")
    s.add_argument("--per-lang", type=int, help="at most N utterances per language, at random (--seed), "
                   "spread over its speakers")
    c = sub.add_parser("combine", help="concatenate data dirs")
    c.add_argument("dst", type=Path)
    c.add_argument("srcs", type=Path, nargs="+")
    args = p.parse_args(argv)
    try:
        if args.command == "validate":
            for path in args.dirs:
                d = DataDir(path).validate()
                print(f"{path}: valid, {len(d)} utterances, tables: {' '.join(d.tables)}")
                if args.add_durations and add_durations(path, quick=args.quick, nj=args.nj):
                    print(f"{path}: wrote utt2dur from the {'audio headers' if args.quick else 'decoded audio'}")
        elif args.command == "fix":
            r = fix_data_dir(args.dir)
            print(f"{args.dir}: kept {r['kept']} utterances, dropped {r['dropped']} (missing from some table)")
        elif args.command == "subset":
            ids = None
            if args.utt_list:
                ids = [line.split()[0] for line in args.utt_list.read_text(encoding="utf-8").splitlines() if line.strip()]
            langs = args.langs.split(",") if args.langs else None
            n = subset_data_dir(args.src, args.dst, first=args.first, random_n=args.random_n, utt_list=ids,
                                per_lang=args.per_lang, langs=langs, seed=args.seed)
            print(f"{args.dst}: {n} utterances")
        else:
            print(f"{args.dst}: {combine_data_dirs(args.dst, args.srcs)} utterances")
    except DataDirError as e:
        print(f"data_dir {args.command}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
