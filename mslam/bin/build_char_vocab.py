"""Build the character vocabulary of the text front end from text shards and transcripts.

    python -m mslam.bin.build_char_vocab --text-shards data/text_shards/train \
        --data-dirs data/asr/train --out data/chars.txt [--max-size 4096 --temperature 3] [--foreign drop]

Text shards are `<lang>.txt` files (one sentence per line); data dirs contribute their `text`,
with the language from `utt2lang`. Which characters make the cut: see mslam.data.tokenizer.
Texts with characters outside their language's scripts (mslam/data/scripts.py) are reported per
language with the commonest such characters; `--foreign drop` leaves them out of the counts, `--foreign
fail` stops with the report.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from mslam.data.kaldi import DataDir, DataDirError
from mslam.data.manifest import UNDETERMINED_LANG, iter_text_shard
from mslam.data.scripts import ScriptCheck
from mslam.data.tokenizer import CharTokenizer, count_chars


@dataclass
class CharCounts:
    """Per-language character counts of everything read so far: what the vocabulary is built from.
    Texts are counted as they stream by and not kept, so memory is bounded by the alphabets, not the
    corpus (one pass over each input)."""
    counts: dict[str, Counter] = field(default_factory=dict)
    texts: int = 0
    seen: set[str] = field(default_factory=set)   # distinct characters as written (for the summary)
    lowercase: bool = False

    def add(self, lang: str, text: str) -> None:
        count_chars(self.counts.setdefault(lang, Counter()), text, self.lowercase)
        self.texts += 1
        self.seen.update(text)


def count_texts(text_shards: list[str], data_dirs: list[str], check: ScriptCheck | None = None,
                drop_foreign: bool = False, lowercase: bool = False, progress: bool = False) -> CharCounts:
    """Counts of the texts, per language; each is checked against its language's scripts when `check`
    is given, and left out when it fails the check and `drop_foreign` is set."""
    counts = CharCounts(lowercase=lowercase)

    def add(where: str, lang: str, text: str) -> None:
        usable = check is None or check.check(where, lang, text)
        if usable or not drop_foreign:
            counts.add(lang, text)

    shards = []
    for shard_dir in text_shards:
        found = sorted(Path(shard_dir).glob("*.txt"))
        if not found:
            raise DataDirError(f"{shard_dir}: no text shards (<lang>.txt, one sentence per line)")
        shards += found
    for shard in tqdm(shards, desc="build_char_vocab", unit="shard", disable=not progress):
        for r in iter_text_shard(shard):
            add(f"{shard}:{r.id.rsplit(':', 1)[1]}", r.lang, r.text)
    for d in data_dirs:
        data = DataDir(d)
        if "text" not in data.tables:
            raise DataDirError(f"{d}: no 'text' file to take characters from")
        langs = data.tables.get("utt2lang", {})
        for utt, text in data.tables["text"].items():
            if text.strip():   # an empty transcript has no characters to count
                add(f"{data.path / 'text'}: utterance '{utt}'", langs.get(utt, UNDETERMINED_LANG), text)
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text-shards", nargs="*", default=[], help="dirs of <lang>.txt shards")
    p.add_argument("--data-dirs", nargs="*", default=[], help="Kaldi data dirs with text (+ utt2lang)")
    p.add_argument("--out", required=True, help="vocabulary file to write (one symbol per line)")
    p.add_argument("--max-size", type=int, default=4096, help="symbols in all, specials included (paper: 4096)")
    p.add_argument("--temperature", type=float, default=3.0, help="language temperature (paper: 3)")
    p.add_argument("--coverage", type=float, default=0.9995, help="character mass each language keeps first")
    p.add_argument("--lowercase", action="store_true")
    p.add_argument("--foreign", choices=("report", "drop", "fail"), default="report",
                   help="texts with characters outside their language's scripts: report them, leave them out, "
                        "or stop")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if not args.text_shards and not args.data_dirs:
        p.error("give --text-shards and/or --data-dirs")
    check = ScriptCheck()
    try:
        counts = count_texts(args.text_shards, args.data_dirs, check, drop_foreign=args.foreign == "drop",
                             lowercase=args.lowercase, progress=not args.no_progress and sys.stderr.isatty())
    except DataDirError as e:
        print(f"build_char_vocab: error: {e}", file=sys.stderr)
        return 1
    for line in check.report():
        print(f"build_char_vocab: {line}", file=sys.stderr)
    n_foreign = sum(check.foreign.values())
    if n_foreign and args.foreign == "fail":
        print(f"build_char_vocab: error: {n_foreign} text(s) have characters outside their language's scripts "
              "(above); fix them, or pass --foreign drop to leave them out", file=sys.stderr)
        return 1
    if n_foreign:
        print(f"build_char_vocab: {n_foreign} text(s) with characters outside their language's scripts "
              f"{'left out' if args.foreign == 'drop' else 'counted (--foreign drop leaves them out)'}")
    tok = CharTokenizer.from_counts(counts.counts, max_size=args.max_size, coverage=args.coverage,
                                    temperature=args.temperature, lowercase=args.lowercase)
    tok.save(args.out)
    print(f"build_char_vocab: {len(tok)} symbols ({len(counts.seen)} distinct characters seen in "
          f"{len(counts.counts)} languages, {counts.texts} texts) -> {Path(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
