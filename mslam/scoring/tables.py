"""Markdown tables in the shape of the paper's: one row per model, the paper's columns.

    st        X->En BLEU: high | mid | low | all (paper: CoVoST 2)
    asr       average WER per test set (paper: VoxPopuli | BABEL | MLS)
    cls       intent accuracy | LangID accuracy (paper: MINDS-14 | FLEURS)
    zeroshot  text->En BLEU per source language | all (an ST model fine-tuned on speech only)

Inputs are the scores.json files `mslam.bin.score` writes; a missing figure is shown as "-". The
corpus a table is about comes from the caller (a recipe's --corpus-name), never from a list here.
"""
from __future__ import annotations

from typing import Mapping

TABLE_KINDS = ("st", "asr", "cls", "zeroshot")


def markdown_table(header: list[str], rows: list[list]) -> str:
    def cell(v):
        return "-" if v is None else f"{v:.1f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def headline(scores: dict) -> float:
    """The one number of a scores.json: average WER, accuracy, or BLEU over all languages."""
    if scores["task"] == "asr":
        return scores["average"]["wer"]
    if scores["task"] in ("intent", "langid"):
        return scores["accuracy"]
    return scores["groups"]["all"]


def baseline_score(scores: dict) -> float | None:
    """What a constant output scores on the same test set: the majority class's accuracy, or the best
    constant hypothesis's BLEU (None for asr)."""
    if scores["task"] in ("intent", "langid"):
        return scores["majority_accuracy"]
    if scores["task"] in ("st", "mt"):
        return scores["constant_baseline"]["bleu_all"]
    return None


def _of(corpus: str | None) -> str:
    return f"{corpus} " if corpus else ""


def st_table(models: Mapping[str, dict], corpus: str | None = None) -> str:
    columns = ["high", "mid", "low", "all"]
    rows = [[name, *(s["groups"].get(c) for c in columns)] for name, s in models.items()]
    return markdown_table([f"{_of(corpus)}X -> English (BLEU)", *columns], rows)


def asr_table(models: Mapping[str, Mapping[str, dict]], corpus: str | None = None) -> str:
    """models: name -> {test set name: asr scores}."""
    sets = list(dict.fromkeys(k for per_set in models.values() for k in per_set))
    rows = [[name, *(per_set[k]["average"]["wer"] if k in per_set else None for k in sets)]
            for name, per_set in models.items()]
    return markdown_table([f"Model ({_of(corpus)}avg. WER %)", *sets], rows)


CLS_TASK_NAMES = {"intent": "intent", "langid": "LangID"}


def cls_table(models: Mapping[str, Mapping[str, dict]], columns: Mapping[str, str] | None = None,
              corpus: str | None = None) -> str:
    """models: name -> {"intent": scores, "langid": scores}; a column per task that some model has,
    headed "<corpus> <task> acc." unless `columns` names them."""
    tasks = [t for t in CLS_TASK_NAMES if any(t in per for per in models.values())] or ["intent"]
    columns = columns or {t: f"{_of(corpus)}{CLS_TASK_NAMES[t]} acc." for t in tasks}
    rows = [[name, *(per[k]["accuracy"] if k in per else None for k in columns)] for name, per in models.items()]
    return markdown_table(["Model", *columns.values()], rows)


def zeroshot_table(models: Mapping[str, dict]) -> str:
    langs = sorted({lang for s in models.values() for lang in s["languages"]})
    rows = [[name, *(s["languages"].get(lang, {}).get("bleu") for lang in langs), s["groups"]["all"]]
            for name, s in models.items()]
    return markdown_table(["Text -> English (BLEU)", *langs, "all"], rows)
