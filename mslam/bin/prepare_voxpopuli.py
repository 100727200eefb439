"""VoxPopuli: list the files to download, and prepare Kaldi data dirs from a download.

    python -m mslam.bin.prepare_voxpopuli files --langs de,fr [--years 2019,2020] [--what unlabelled,asr] [--v2]
    python -m mslam.bin.prepare_voxpopuli prepare --root DL --out data/voxpopuli_unlab --what unlabelled \\
        [--langs de,fr] [--years 2019,2020] [--v2] [--nj 4] [--no-progress] [--part J/N | --shared-only]
    python -m mslam.bin.prepare_voxpopuli prepare --root DL --out data/voxpopuli_asr --what asr [...]

`files` prints the paths under https://dl.fbaipublicfiles.com/voxpopuli, one a line. `prepare`
extracts the archives under DL (laid out as the download base) into DL/raw_audios/ and writes
OUT/train (unlabelled) or OUT/{train,dev,test} (asr). Defaults: every language of the part, years
2009..2020. Without --v2, unlabelled speech is the plenary sessions (the per-language `<lang>`
subsets); --v2 adds the `<lang>_<year>_2.tar` archives and every event (the `<lang>_v2` subsets).
ASR rows of several VAD pieces are joined into OUT/joined_audio/ (see mslam/data/corpora/voxpopuli.py).
The summary gives, per language, the utterances kept per split and the rows left out per reason.
Each language is a shard (--nj at once) kept in OUT.parts/ until the data dirs are written: memory
does not grow with the rows, and a rerun after a kill redoes only the languages not finished.

As a job array (run.pl on one machine, slurm.pl across nodes), with the same selection options in all three:
    python -m mslam.bin.prepare_voxpopuli prepare ... --shared-only     # what every language needs, once
    $train_cmd JOB=1:N log/prepare.JOB.log python -m mslam.bin.prepare_voxpopuli prepare ... --part JOB/N
    python -m mslam.bin.prepare_voxpopuli prepare ... --nj N            # merge: finds every language done
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from mslam.data.audio import AudioError
from mslam.data.corpora.common import PartDone, add_part_option, exit_status, split_list
from mslam.data.corpora.voxpopuli import WHATS, files, prepare, prepare_shared, tally_line
from mslam.data.kaldi import DataDirError

PROG = "prepare_voxpopuli"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("files", help="print the paths to download")
    f.add_argument("--what", type=split_list, default=list(WHATS),
                   help="comma-separated: unlabelled,asr (default both)")
    r = sub.add_parser("prepare", help="extract the audio and write the data dirs")
    r.add_argument("--root", type=Path, required=True, help="the download (laid out as the download base)")
    r.add_argument("--out", type=Path, required=True, help="where the data dirs go")
    r.add_argument("--what", choices=WHATS, required=True)
    r.add_argument("--nj", type=int, default=1,
                   help="languages prepared at once (processes), and archives extracted, recordings checked and "
                        "utterances joined at once")
    r.add_argument("--no-progress", action="store_true")
    add_part_option(r)
    r.add_argument("--shared-only", action="store_true",
                   help="do only the work that every language's shard needs (unlabelled: split the table by "
                        "language; asr: extract the session archives), before a job array of --part calls")
    for s in (f, r):
        s.add_argument("--langs", type=split_list,
                       help="comma-separated language codes (default: all of --what)")
        s.add_argument("--years", type=split_list, help="comma-separated years 2009..2020 (default: all)")
        s.add_argument("--v2", action="store_true", help="unlabelled: also the non-plenary events (_2 archives)")
    args = p.parse_args(argv)
    if args.command == "prepare" and args.shared_only and args.part:
        p.error("--shared-only comes before the job array of --part calls; give one or the other")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    return exit_status(PROG, run, args, errors=(DataDirError, AudioError))


def run(args: argparse.Namespace) -> None:
    if args.command == "files":
        for path in files(args.what, args.langs, args.years, args.v2):
            print(path)
    elif args.shared_only:
        print(f"{PROG}: " + prepare_shared(args.root, args.out, args.what, args.langs, args.years, args.v2, args.nj,
                                           progress=not args.no_progress))
    else:
        summary = prepare(args.root, args.out, args.what, args.langs, args.years, args.v2, args.nj,
                          progress=not args.no_progress, part=args.part)
        if isinstance(summary, PartDone):
            print(f"{PROG}: {summary.line()}")
            return
        for lang, entry in summary["languages"].items():
            print(f"{PROG}: {lang}: {tally_line(entry)}")
        for split, n in summary["counts"].items():
            print(f"{args.out / split}: {n} utterances")


if __name__ == "__main__":
    sys.exit(main())
