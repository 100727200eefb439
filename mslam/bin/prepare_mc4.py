"""mC4 text for pre-training: the download list, and character-level text shards (one sentence per line).

    python -m mslam.bin.prepare_mc4 files --langs de,ru [--shards 1] [--validation-shards 1]
    python -m mslam.bin.prepare_mc4 prepare --root MC4 --out data/text_shards [--langs de,ru] [--nj 4]
        [--max-sentences-per-lang N] [--min-chars 20] [--max-chars 512] [--no-progress] [--part J/N]

`files` prints the paths, under the pinned allenai/c4 revision, of the first N train and M validation
shards per language (default languages: the 101 of the paper; `--langs all` adds und and the -Latn
configs). `prepare` reads <root>/multilingual/c4-*.json.gz and writes <out>/train/<lang>.txt,
<out>/dev/<lang>.txt and <out>/stats.json (cleaning rules: mslam/data/corpora/mc4.py), and prints per
language and split the documents, sentences and characters kept and dropped. A language left without any
train text fails the command. Languages already made from the same shards with the same options are
not redone, nor are the shards that a killed run had read (kept under <out>/.work until their language
is done). As a job array: `$train_cmd JOB=1:N log/prepare.JOB.log python -m mslam.bin.prepare_mc4 prepare
... --part JOB/N` (each job reads every N-th shard of all the languages into <out>/.work and stops), then
the same command without --part reads no shard again, de-duplicates and writes the languages
(--max-sentences-per-lang has no shards to spread and refuses --part). Then:

    python -m mslam.bin.build_char_vocab --text-shards data/text_shards/train --out data/chars.txt
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from mslam.data.corpora.common import PartDone, add_part_option, exit_status, split_list
from mslam.data.corpora.mc4 import (CAPPED_PART, CleaningRules, EmptyLanguageError, download_list, paper_languages,
                                   prepare, read_shard_table, summary_line)

PROG = "prepare_mc4"


def _count(minimum: int):
    def parse(value: str) -> int:
        n = int(value)
        if n < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {n}")
        return n
    return parse


def _langs(value: str | None) -> list[str] | None:
    if value == "all":
        return list(read_shard_table())
    return split_list(value) if value else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("files", help="print the shard paths to download, one per line")
    f.add_argument("--langs", help="comma-separated mC4 codes, or 'all' (default: the paper's 101 languages)")
    f.add_argument("--shards", type=_count(0), default=1, help="train shards per language, from the first")
    f.add_argument("--validation-shards", type=_count(0), default=1, help="validation shards per language")
    r = sub.add_parser("prepare", help="write text shards <out>/{train,dev}/<lang>.txt and stats.json")
    r.add_argument("--root", type=Path, required=True, help="downloaded corpus (holds multilingual/)")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--langs", help="comma-separated mC4 codes, or 'all' (default: every language under --root)")
    r.add_argument("--nj", type=_count(1), default=1,
                   help="shards read in parallel (with --max-sentences-per-lang: languages)")
    r.add_argument("--max-sentences-per-lang", type=_count(1), help="keep at most N sentences per language and split")
    r.add_argument("--min-chars", type=_count(1), default=20,
                   help="drop shorter sentences; scaled per script (20: Chinese and Japanese 5, Korean 8, Thai 12)")
    r.add_argument("--max-chars", type=_count(1), default=512, help="cut longer sentences into pieces")
    r.add_argument("--no-progress", action="store_true")
    add_part_option(r, help="read only the input shards i (of all the languages, in order) with i %% N == J-1 "
                            "into OUT/.work (a job of a job array: --part JOB/N under run.pl or slurm.pl) and stop "
                            "before de-duplication; the same command without --part then reads no shard again "
                            "and writes the languages")
    args = p.parse_args(argv)
    if args.command == "prepare" and args.min_chars > args.max_chars:
        p.error(f"--min-chars {args.min_chars} is above --max-chars {args.max_chars}")
    if args.command == "prepare" and args.part and args.max_sentences_per_lang:
        p.error(CAPPED_PART)
    logging.basicConfig(level=logging.INFO, format=f"{PROG}: %(message)s")
    return exit_status(PROG, run, args)


def run(args: argparse.Namespace) -> None:
    if args.command == "files":
        for path in download_list(_langs(args.langs) or paper_languages(), args.shards, args.validation_shards):
            print(path)
        return
    rules = CleaningRules(args.min_chars, args.max_chars, args.max_sentences_per_lang)
    try:
        result = prepare(args.root, args.out, _langs(args.langs), rules, nj=args.nj, progress=not args.no_progress,
                         part=args.part)
    except EmptyLanguageError as e:
        print_summary(e.stats, e.made, args.out)
        raise
    if isinstance(result, PartDone):
        print(f"{PROG}: {result.line()}")
    else:
        print_summary(*result, args.out)


def print_summary(stats: dict, made: list[str], out: Path) -> None:
    """Per language and split: documents, sentences and characters kept and dropped. A language left
    without dev text is warned about on stderr (its train text is there; the error for none is prepare's)."""
    for lang, entry in stats.items():
        splits = " | ".join(summary_line(split, entry[split]) for split in ("train", "dev") if split in entry)
        print(f"{PROG}: {lang}: {splits}{'' if lang in made else ' (up to date)'}")
        if "dev" in entry and not entry["dev"]["sentences"] and entry["train"]["sentences"]:
            print(f"{PROG}: WARNING: {lang}: no dev text left ({summary_line('dev', entry['dev'])})", file=sys.stderr)
    print(f"{PROG}: {len(made)} of {len(stats)} languages made -> {out} (statistics in stats.json)")


if __name__ == "__main__":
    sys.exit(main())
