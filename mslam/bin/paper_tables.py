"""Combine scores.json files into a table in the shape of the paper's (rows = models).

    python -m mslam.bin.paper_tables --kind st --model w2v-bert=exp/a/scores.json --model mslam-ctc=... --out st.md
    python -m mslam.bin.paper_tables --kind asr --model mslam-ctc:VoxPopuli=exp/b/scores.json ...
    python -m mslam.bin.paper_tables --kind cls --model mslam-ctc:intent=... --model mslam-ctc:langid=...
    python -m mslam.bin.paper_tables --kind cls --corpus MINDS-14 --model tiny=exp/tiny/decode_test/scores.json

--model NAME[:COLUMN]=SCORES: COLUMN is the test set (asr) or the task (cls: intent, langid).
--corpus names the corpus in the headers ("MINDS-14 intent acc."); a recipe passes its own.
Prints the markdown table, or writes it to --out; --json writes every number of every input.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mslam.data.kaldi import atomic_write_text
from mslam.scoring.tables import TABLE_KINDS, asr_table, cls_table, st_table, zeroshot_table


def build(kind: str, specs: list[str], corpus: str | None = None) -> tuple[str, dict]:
    flat: dict[str, dict] = {}
    nested: dict[str, dict[str, dict]] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            raise ValueError(f"--model {spec!r}: expected NAME[:COLUMN]=SCORES_JSON")
        model, _, column = name.partition(":")
        scores = json.loads(Path(path).read_text(encoding="utf-8"))
        flat[name] = scores
        nested.setdefault(model, {})[column or scores["task"]] = scores
    if kind == "st":
        return st_table(flat, corpus), flat
    if kind == "zeroshot":
        return zeroshot_table(flat), flat
    if kind == "asr":
        return asr_table(nested, corpus), nested
    return cls_table(nested, corpus=corpus), nested


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kind", required=True, choices=TABLE_KINDS)
    p.add_argument("--model", action="append", required=True, metavar="NAME[:COLUMN]=SCORES_JSON")
    p.add_argument("--corpus", help="the corpus's name, for the headers (e.g. MINDS-14)")
    p.add_argument("--out", help="markdown file (default: print)")
    p.add_argument("--json", help="write every number of the inputs here")
    args = p.parse_args(argv)
    try:
        table, numbers = build(args.kind, args.model, args.corpus)
    except (ValueError, OSError, KeyError) as e:
        print(f"paper_tables: error: {e}", file=sys.stderr)
        return 1
    if args.out:
        atomic_write_text(args.out, table)
    else:
        print(table, end="")
    if args.json:
        atomic_write_text(args.json, json.dumps(numbers, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
