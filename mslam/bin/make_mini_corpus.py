"""Generate the offline toy corpus of egs/mini (espeak-ng + num2words; no network).

    python -m mslam.bin.make_mini_corpus --size tiny|learn|small|base --out-dir DIR [--seed 0] [--nj 2]

See mslam/data/mini_corpus.py for what is written under DIR, and egs/mini/README.md.
"""
from __future__ import annotations

import argparse
import sys

from mslam.data.mini_corpus import SIZES, CorpusError, generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mslam.bin.make_mini_corpus", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", required=True, help="where the corpus goes (its own subdirs are replaced)")
    parser.add_argument("--size", default="small", choices=sorted(SIZES),
                        help="tiny: unit tests (seconds); small: the demo (minutes); base: a longer run")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same bytes")
    parser.add_argument("--nj", type=int, default=2, help="espeak-ng processes running at once")
    parser.add_argument("--engine", default="auto", choices=("auto", "library", "program"),
                        help="libespeak-ng in worker processes (fast; auto when it loads) or the espeak-ng program")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.nj < 1:
        parser.error(f"--nj must be >= 1, got {args.nj}")
    try:
        generate(args.out_dir, size=args.size, seed=args.seed, nj=args.nj, progress=not args.no_progress,
                 verbose=True, engine=args.engine)
    except CorpusError as e:
        print(f"make_mini_corpus: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
