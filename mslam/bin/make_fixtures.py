"""Build tiny download fixtures: VoxPopuli, Common Voice + CoVoST 2, FLEURS, MINDS-14 and mC4 as
their download servers lay them out, filled with the offline toy corpus (no network).

    python -m mslam.bin.make_fixtures --out-dir DIR [--seed 0] [--corpus-dir TOY_CORPUS] [--nj 2]

Writes DIR/<corpus>/... (one folder per download URL base; point a recipe's base URL at
file://DIR/<corpus>) and DIR/MANIFEST.json (sha256 and size of every file). Without
--corpus-dir the tiny toy corpus is generated (with --seed) in a temporary directory first.
See mslam/data/fixtures.py for the layouts.
"""
from __future__ import annotations

import argparse
import sys
import time

from mslam.data.fixtures import FixtureError, format_summary, make_fixtures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mslam.bin.make_fixtures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", required=True,
                        help="where the fixture tree goes (its corpus folders are replaced)")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same bytes")
    parser.add_argument("--corpus-dir", default=None,
                        help="an existing toy corpus (make_mini_corpus output) to take audio and labels from")
    parser.add_argument("--nj", type=int, default=2, help="espeak-ng processes when generating the toy corpus")
    args = parser.parse_args(argv)
    if args.nj < 1:
        parser.error(f"--nj must be >= 1, got {args.nj}")
    t0 = time.time()
    try:
        manifest = make_fixtures(args.out_dir, corpus_dir=args.corpus_dir, seed=args.seed, nj=args.nj)
    except FixtureError as e:
        print(f"make_fixtures: error: {e}", file=sys.stderr)
        return 1
    print(f"make_fixtures: seed {args.seed}, toy corpus {args.corpus_dir or '(generated, tiny)'}")
    print(format_summary(manifest))
    print(f"make_fixtures: wrote {args.out_dir} (checksums in MANIFEST.json) in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
