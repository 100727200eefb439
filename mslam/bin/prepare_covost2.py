"""CoVoST 2 X->En (Common Voice v4 audio): download lists, resource groups and Kaldi data dirs.

    python -m mslam.bin.prepare_covost2 files --source commonvoice [--langs fr,de]   # paths under each base
    python -m mslam.bin.prepare_covost2 files --source covost2 [--langs fr,de]
    python -m mslam.bin.prepare_covost2 groups > conf/st_groups.json                 # for score --groups
    python -m mslam.bin.prepare_covost2 prepare --cv-root CV --covost-root COVOST --out data/covost2 \\
        [--langs fr,de] [--nj 4] [--no-progress] [--part J/N]

`prepare` reads what `files` listed, downloaded as `<base root>/<path>` (`--root DIR` when both
bases were downloaded into one folder), extracts each archive once (Common Voice into
`<cv-root>/<lang>/`, as ESPnet lays it out; an extracted copy there is used as is), and writes
OUT/{train,dev,test}: wav.scp (mp3), text (source sentence), text.en, utt2spk, spk2utt, utt2lang.
Without --langs: all 21 source languages. Each language is a shard (--nj at once) kept in OUT.parts/
until the data dirs are written: a rerun after a kill redoes only the languages not finished. As a job
array: `$train_cmd JOB=1:N log/prepare.JOB.log python -m mslam.bin.prepare_covost2 prepare ... --part JOB/N`
(each job extracts and joins its share of the languages), then the same command without --part merges.
See mslam/data/corpora/covost2.py.
"""
from __future__ import annotations

import argparse
import logging
import sys

from mslam.data.corpora import covost2
from mslam.data.corpora.common import PartDone, add_part_option, exit_status, split_list
from mslam.data.kaldi import DataDirError

PROG = "prepare_covost2"


def _langs(value: str | None) -> list[str] | None:
    # "fr,de" as the brief CLI shape has it; "fr de" as recipes pass shell lists.
    return split_list(value) if value else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    langs_help = (f"Common Voice codes separated by commas or spaces "
                  f"(default: all of {' '.join(covost2.LANGUAGES)})")
    f = sub.add_parser("files", help="print the paths to download under one base URL")
    f.add_argument("--source", required=True, choices=covost2.SOURCES, help="which download base")
    f.add_argument("--langs", help=langs_help)
    sub.add_parser("groups", help="print the paper's high/mid/low groups as JSON (score --groups)")
    p = sub.add_parser("prepare", help="extract the downloads and write the data dirs")
    p.add_argument("--root", help="default for --cv-root and --covost-root (both bases in one folder)")
    p.add_argument("--cv-root", help="Common Voice download root (COMMONVOICE in db.sh)")
    p.add_argument("--covost-root", help="CoVoST 2 download root (COVOST2 in db.sh)")
    p.add_argument("--out", required=True, help="where train/, dev/, test/ go")
    p.add_argument("--langs", help=langs_help)
    p.add_argument("--nj", type=int, default=1, help="archives extracted, and languages joined (processes), at once")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_part_option(p)
    args = parser.parse_args(argv)
    if args.command == "prepare":
        args.cv_root, args.covost_root = args.cv_root or args.root, args.covost_root or args.root
        if not args.cv_root or not args.covost_root:
            parser.error("prepare needs --cv-root and --covost-root (or --root for both)")
        if args.nj < 1:
            parser.error(f"--nj must be >= 1, got {args.nj}")
    logging.basicConfig(level=logging.INFO, format=f"{PROG}: %(message)s")
    return exit_status(PROG, run, args, errors=(DataDirError, OSError))


def run(args: argparse.Namespace) -> None:
    if args.command == "files":
        print("\n".join(covost2.download_files(args.source, _langs(args.langs))))
    elif args.command == "groups":
        print(covost2.groups_json())
    else:
        summary = covost2.prepare(args.cv_root, args.covost_root, args.out, _langs(args.langs), nj=args.nj,
                                  progress=not args.no_progress, part=args.part)
        if isinstance(summary, PartDone):
            print(f"{PROG}: {summary.line()}")
            return
        sizes = ", ".join(f"{split} {n}" for split, n in summary["utterances"].items())
        state = "already up to date" if summary["up_to_date"] else "written"
        print(f"{PROG}: {args.out} {state}: {sizes} utterances ({' '.join(summary['langs'])})")


if __name__ == "__main__":
    sys.exit(main())
