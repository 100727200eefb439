"""FLEURS for language identification: what to download, and Kaldi data dirs from the download.

    python -m mslam.bin.prepare_fleurs files [--langs de_de,fr_fr]
    python -m mslam.bin.prepare_fleurs prepare --root DIR --out DIR [--langs de_de,fr_fr] [--nj 4] [--part J/N]

`files` prints the paths under https://huggingface.co/datasets/google/fleurs/resolve/main to fetch
(default: all 102 languages). `prepare` extracts the audio archives under --root once and writes
OUT/{train,dev,test} (all languages together; utt2lang is the LangID label). Each language is a
shard (--nj at once) kept in OUT.parts/ until the data dirs are written: a rerun after a kill redoes
only the languages not finished. As a job array: `$train_cmd JOB=1:N log/prepare.JOB.log python -m
mslam.bin.prepare_fleurs prepare ... --part JOB/N` (each job extracts and reads its share of the
languages), then the same command without --part merges. See mslam/data/corpora/fleurs.py.
"""
from __future__ import annotations

import argparse
import logging
import sys

from mslam.data.corpora import fleurs
from mslam.data.corpora.common import PartDone, add_part_option, exit_status

PROG = "prepare_fleurs"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    langs_help = "comma-separated FLEURS codes (default: all 102)"
    f = sub.add_parser("files", help="print the files the download stage fetches")
    f.add_argument("--langs", help=langs_help)
    r = sub.add_parser("prepare", help="extract the download and write the data dirs")
    r.add_argument("--root", required=True, help="the downloaded files, laid out as under the URL base")
    r.add_argument("--out", required=True, help="where train/, dev/ and test/ go")
    r.add_argument("--langs", help=langs_help)
    r.add_argument("--nj", type=int, default=1, help="archives extracted, and languages read (processes), at once")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_part_option(r)
    args = p.parse_args(argv)
    if args.command == "prepare" and args.nj < 1:
        p.error(f"--nj must be >= 1, got {args.nj}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return exit_status(PROG, run, args)


def run(args: argparse.Namespace) -> None:
    langs = fleurs.parse_langs(args.langs)
    if args.command == "files":
        print("\n".join(fleurs.download_files(langs)))
    else:
        counts = fleurs.prepare(args.root, args.out, langs, nj=args.nj, progress=not args.no_progress, part=args.part)
        if isinstance(counts, PartDone):
            print(f"{PROG}: {counts.line()}")
            return
        print(f"{PROG}: {len(langs)} language(s); " + ", ".join(f"{s} {n}" for s, n in counts.items())
              + f" utterances in {args.out}")


if __name__ == "__main__":
    sys.exit(main())
