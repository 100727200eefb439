"""Score hypotheses against a data dir: WER/CER (asr), BLEU with the CoVoST-2 groups (st, mt),
accuracy with a confusion matrix (intent, langid).

    python -m mslam.bin.score --task st --data data/st/test --hyp exp/st/decode_test/hyp
    python -m mslam.bin.score --task asr --data data/asr/test --hyp exp/asr/decode_test/hyp --out-dir DIR

Writes OUT_DIR (default: the hyp file's dir)/scores.json with every number, result.md with the
per-language table, and confusion.png for classification. --groups names a JSON file
{"high": [langs], "mid": [...], "low": [...]} to replace the paper's CoVoST-2 groups.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mslam.data.kaldi import DataDir, DataDirError, atomic_write_text, read_table
from mslam.data.tokenizer import normalize_text
from mslam.scoring.metrics import COVOST2_GROUPS, ScoringError, accuracy, bleu, error_rates
from mslam.scoring.plots import confusion_png
from mslam.scoring.tables import baseline_score, headline, markdown_table

REFERENCE_TABLES = {"st": "text.en", "mt": "text.en", "asr": "text", "intent": "utt2intent", "langid": "utt2lang"}


def score(task: str, data: str | Path, hyp: str | Path, out_dir: str | Path | None = None,
          groups: dict | None = None, ref_table: str | None = None) -> dict:
    d = DataDir(data)
    table = ref_table or REFERENCE_TABLES[task]
    if table not in d.tables:
        raise DataDirError(f"{data}: no '{table}' with the references of task {task}")
    refs = {u: normalize_text(v) for u, v in d.tables[table].items()}
    hyps = {u: normalize_text(v) for u, v in read_table(hyp, allow_empty_value=True, check_sorted=False).items()}
    utt2lang = d.tables.get("utt2lang", {})
    if task == "asr":
        scores = error_rates(refs, hyps, utt2lang)
        rows = [[lang, v["utterances"], v["wer"], v["cer"]] for lang, v in scores["languages"].items()]
        rows.append(["average", sum(v["utterances"] for v in scores["languages"].values()),
                     scores["average"]["wer"], scores["average"]["cer"]])
        md = markdown_table(["language", "utterances", "WER %", "CER %"], rows)
    elif task in ("st", "mt"):
        scores = bleu(refs, hyps, utt2lang, groups or COVOST2_GROUPS)
        rows = [[lang, v["utterances"], v["bleu"]] for lang, v in scores["languages"].items()]
        rows += [[f"avg. {name}", "", v] for name, v in scores["groups"].items()]
        constant = scores["constant_baseline"]
        rows.append([f"best constant output (\"{constant['hypothesis']}\"), all", "", constant["bleu_all"]])
        md = markdown_table(["source language", "utterances", "BLEU"], rows)
        md += f"\n{scores['distinct_hypotheses']} distinct hypotheses for {len(refs)} utterances.\n"
    else:
        scores = accuracy(refs, hyps, utt2lang)
        rows = [[lang, v["utterances"], v["accuracy"]] for lang, v in scores.get("languages", {}).items()]
        rows.append(["all", scores["utterances"], scores["accuracy"]])
        rows.append([f"majority class ({scores['majority_class']}), all", scores["utterances"],
                     scores["majority_accuracy"]])
        md = markdown_table(["language", "utterances", "accuracy %"], rows)
    scores = {"task": task, "data": str(data), "hyp": str(hyp), **scores}
    out = Path(out_dir) if out_dir else Path(hyp).parent
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "scores.json", json.dumps(scores, indent=1, ensure_ascii=False) + "\n")
    atomic_write_text(out / "result.md", f"# {task}: {data}\n\n{md}")
    if task in ("intent", "langid"):
        confusion_png(scores, out / "confusion.png", f"{task}: accuracy {scores['accuracy']:.1f}%")
    return scores


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, choices=sorted(REFERENCE_TABLES))
    p.add_argument("--data", required=True, help="the decoded data dir (references and utt2lang)")
    p.add_argument("--hyp", required=True, help="hypotheses, '<utt-id> <hypothesis>' per line")
    p.add_argument("--out-dir")
    p.add_argument("--groups", help="JSON file of language groups for BLEU averages")
    p.add_argument("--ref-table", help="the data dir's table with the references (default by task)")
    args = p.parse_args(argv)
    try:
        groups = json.loads(Path(args.groups).read_text()) if args.groups else None
        scores = score(args.task, args.data, args.hyp, args.out_dir, groups, args.ref_table)
    except (DataDirError, ScoringError, OSError, json.JSONDecodeError) as e:
        print(f"score: error: {e}", file=sys.stderr)
        return 1
    name = {"asr": "avg. WER", "intent": "accuracy", "langid": "accuracy"}.get(args.task, "BLEU (all)")
    extra = f", avg. CER {scores['average']['cer']:.2f}" if args.task == "asr" else ""
    baseline = "majority class" if args.task in ("intent", "langid") else "best constant output"
    print(f"score: {args.task} {args.data}: {name} {headline(scores):.2f}{extra}"
          + (f" ({baseline}: {baseline_score(scores):.2f})" if baseline_score(scores) is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
