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
    python -m mslam.bin.data_dir scripts data/train [--action report|drop|fail]   # transcripts vs their scripts

--add-durations decodes the audio of a dir without lengths (its utt2dur is what training will read) and
names every utterance whose file is empty, cut short or holds NaN/inf samples; --quick reads only the
headers (empty and cut-short WAV files are still found).

validate and scripts read a dir as a stream, a line of each table at a time, so memory does not grow with its
utterances (scripts --action drop then rewrites the dir through the whole-dir path).

`scripts` checks each transcript (`text`) against the scripts of its language (`utt2lang`; see
mslam/data/scripts.py): characters of another script (a Cyrillic look-alike in German, Chinese in a
Latin-script transcript) and empty transcripts are reported; `--action drop` rewrites the dir without
those utterances, `--action fail` exits 1 when there are any.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mslam.data.corpora.common import iter_data_dir, table_names
from mslam.data.kaldi import DataDirError, add_durations, combine_data_dirs, filter_utterances, fix_data_dir, \
    subset_data_dir
from mslam.data.scripts import ScriptCheck


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
    sc = sub.add_parser("scripts", help="check transcripts against the scripts of their languages")
    sc.add_argument("dirs", type=Path, nargs="+")
    sc.add_argument("--action", choices=("report", "drop", "fail"), default="report",
                    help="what to do with utterances whose transcript is empty or has characters of another script")
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
                validate(path)
                if args.add_durations and add_durations(path, quick=args.quick, nj=args.nj):
                    print(f"{path}: wrote utt2dur from the {'audio headers' if args.quick else 'decoded audio'}")
        elif args.command == "scripts":
            return 1 if sum(check_scripts(path, args.action) for path in args.dirs) else 0
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


def validate(path: Path) -> None:
    """Check a dir as DataDir(path).validate() does, reading it as a stream (memory does not grow with
    its utterances), and print its utterance count and tables."""
    count = sum(1 for _ in iter_data_dir(path))
    print(f"{path}: valid, {count} utterances, tables: {' '.join(table_names(path))}")


def check_scripts(path: Path, action: str) -> int:
    """Report (and with `drop`, remove) the utterances whose transcript is empty or holds characters
    outside its language's scripts. Returns how many are left that `fail` should fail on.

    The dir is read as a stream (text and utt2lang a line at a time); only `drop` holds the ids it drops,
    and then rewrites the dir through filter_utterances, which loads it whole (a dir that needs dropping
    is rewritten once; its check, the common case, stays in bounded memory)."""
    has_text = "text" in table_names(path)
    check, bad, count = ScriptCheck(), [], 0
    for utt, row in iter_data_dir(path):   # (also without text: the dir is still validated)
        count += 1
        lang = row["utt2lang"][1] if "utt2lang" in row else "und"
        if has_text and not check.check(f"{path / 'text'}: utterance '{utt}'", lang, row["text"][1]) \
                and action == "drop":
            bad.append(utt)
    if not has_text:
        print(f"{path}: no transcripts (text): nothing to check")
        return 0
    for line in check.report():
        print(f"{path}: {line}", file=sys.stderr)
    verdict = {"report": "kept", "drop": "dropped", "fail": "refused"}[action]
    found = check.problems
    print(f"{path}: {found} of {count} utterances have an empty transcript ({len(check.empty)}) or characters "
          f"outside their language's scripts ({found - len(check.empty)}): {verdict}")
    if action == "drop" and bad:
        dropped = set(bad)
        filter_utterances(path, path, lambda utt: utt.id not in dropped)
    return found if action == "fail" else 0


if __name__ == "__main__":
    sys.exit(main())
