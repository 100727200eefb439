"""MINDS-14 for intent classification: what to download, Kaldi data dirs from the download, the labels.

    python -m mslam.bin.prepare_minds14 files
    python -m mslam.bin.prepare_minds14 prepare --root DIR --out DIR [--langs de-DE,fr-FR] [--seed 42]
                                                [--dev-frac 0.1 --test-frac 0.1]
    python -m mslam.bin.prepare_minds14 intents > intents.txt

`files` prints the path under https://poly-public-data.s3.amazonaws.com/MInDS-14 to fetch (one archive
for all languages). `prepare` extracts it under --root once and writes OUT/{train,dev,test}: a seeded
split of every language stratified by intent (80/10/10 by default). `intents` prints the 14 class
names, one per line. See mslam/data/corpora/minds14.py.
"""
from __future__ import annotations

import argparse
import logging
import sys

from mslam.data.corpora import minds14
from mslam.data.corpora.common import exit_status

PROG = "prepare_minds14"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    langs_help = "comma-separated MINDS-14 codes, e.g. de-DE,fr-FR (default: all 14)"
    f = sub.add_parser("files", help="print the files the download stage fetches")
    f.add_argument("--langs", help=langs_help + "; the archive is the same for all")
    r = sub.add_parser("prepare", help="extract the download and write the data dirs")
    r.add_argument("--root", required=True, help="the downloaded files, laid out as under the URL base")
    r.add_argument("--out", required=True, help="where train/, dev/ and test/ go")
    r.add_argument("--langs", help=langs_help)
    r.add_argument("--seed", type=int, default=42, help="seed of the split (same seed, same split)")
    r.add_argument("--dev-frac", type=float, default=0.1, help="share of each language in dev")
    r.add_argument("--test-frac", type=float, default=0.1, help="share of each language in test")
    r.add_argument("--nj", type=int, default=1, help="accepted for a uniform interface; one archive, unused")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    sub.add_parser("intents", help="print the 14 intent classes, one per line")
    args = p.parse_args(argv)
    if args.command == "prepare":
        fracs = (args.dev_frac, args.test_frac)
        if not (all(0 <= x < 1 for x in fracs) and sum(fracs) < 1):
            p.error(f"--dev-frac {args.dev_frac} and --test-frac {args.test_frac}: each in [0, 1), together below 1")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return exit_status(PROG, run, args)


def run(args: argparse.Namespace) -> None:
    if args.command == "intents":
        print("\n".join(minds14.INTENTS))
    elif args.command == "files":
        minds14.parse_langs(args.langs)   # an unknown code is still an error
        print("\n".join(minds14.download_files()))
    else:
        langs = minds14.parse_langs(args.langs)
        counts = minds14.prepare(args.root, args.out, langs, seed=args.seed, dev_frac=args.dev_frac,
                                 test_frac=args.test_frac, progress=not args.no_progress)
        print(f"{PROG}: {len(langs)} language(s); " + ", ".join(f"{s} {n}" for s, n in counts.items())
              + f" utterances in {args.out}")


if __name__ == "__main__":
    sys.exit(main())
