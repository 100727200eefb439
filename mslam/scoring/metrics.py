"""Metrics of the paper's tables: WER/CER per language (jiwer), BLEU per language and averaged over
the CoVoST-2 resource groups (sacreBLEU), and classification accuracy with a confusion matrix.

Averages over languages are plain means of the per-language figures, as the paper's "average WER"
and "high / mid / low / all" BLEU columns are.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Mapping

import jiwer
import sacrebleu

# CoVoST 2 X->En groups of the paper (the XLS-R grouping).
COVOST2_GROUPS = {
    "high": ["fr", "de", "es", "ca"],
    "mid": ["fa", "it", "ru", "pt", "zh"],
    "low": ["tr", "ar", "et", "mn", "nl", "sv", "lv", "sl", "ta", "ja", "id", "cy"],
}


class ScoringError(ValueError):
    """Hypotheses and references do not match."""


def check_ids(refs: Mapping[str, str], hyps: Mapping[str, str], where: str = "hypotheses") -> None:
    missing = sorted(set(refs) - set(hyps))
    extra = sorted(set(hyps) - set(refs))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} utterance(s) without a hypothesis (first: {missing[0]})")
        if extra:
            parts.append(f"{len(extra)} hypothesis(es) for unknown utterances (first: {extra[0]})")
        raise ScoringError(f"{where}: " + "; ".join(parts))


def by_language(utt2lang: Mapping[str, str], utts) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for u in sorted(utts):
        groups[utt2lang.get(u, "und")].append(u)
    return dict(sorted(groups.items()))


def _edit_counts(refs: list[str], hyps: list[str], unit: str) -> tuple[int, int]:
    """(errors, reference length) in words or characters; an empty reference costs its hypothesis' length."""
    errors = length = 0
    pairs = [(r, h) for r, h in zip(refs, hyps) if r.strip()]
    for r, h in zip(refs, hyps):
        if not r.strip():
            errors += len(h.split()) if unit == "word" else len(h)
    if pairs:
        process = jiwer.process_words if unit == "word" else jiwer.process_characters
        out = process([r for r, _ in pairs], [h for _, h in pairs])
        errors += out.substitutions + out.deletions + out.insertions
        length += out.substitutions + out.deletions + out.hits
    return errors, length


def error_rates(refs: Mapping[str, str], hyps: Mapping[str, str], utt2lang: Mapping[str, str]) -> dict:
    """{"languages": {lang: {wer, cer, utterances, words, chars}}, "average": {wer, cer}} in percent."""
    check_ids(refs, hyps)
    langs = {}
    for lang, utts in by_language(utt2lang, refs).items():
        r, h = [refs[u] for u in utts], [hyps[u] for u in utts]
        word_err, words = _edit_counts(r, h, "word")
        char_err, chars = _edit_counts(r, h, "char")
        langs[lang] = {"wer": 100.0 * word_err / max(words, 1), "cer": 100.0 * char_err / max(chars, 1),
                       "utterances": len(utts), "words": words, "chars": chars}
    average = {k: sum(v[k] for v in langs.values()) / len(langs) for k in ("wer", "cer")}
    return {"languages": langs, "average": average}


def bleu(refs: Mapping[str, str], hyps: Mapping[str, str], utt2lang: Mapping[str, str],
         groups: Mapping[str, list[str]] = COVOST2_GROUPS, baselines: bool = True) -> dict:
    """Corpus BLEU per source language, and the mean over each group's languages present ("all":
    every language present). Languages in no group count only in "all". With `baselines`, also the
    number of distinct hypotheses and the best constant hypothesis's BLEU."""
    check_ids(refs, hyps)
    langs = {}
    for lang, utts in by_language(utt2lang, refs).items():
        score = sacrebleu.corpus_bleu([hyps[u] for u in utts], [[refs[u] for u in utts]])
        langs[lang] = {"bleu": score.score, "utterances": len(utts)}
    averages = {}
    for name, members in groups.items():
        present = [lang for lang in members if lang in langs]
        if present:
            averages[name] = sum(langs[lang]["bleu"] for lang in present) / len(present)
    averages["all"] = sum(v["bleu"] for v in langs.values()) / len(langs)
    ungrouped = sorted(set(langs) - {lang for m in groups.values() for lang in m})
    return {"languages": langs, "groups": averages, "group_members": {k: list(v) for k, v in groups.items()},
            "ungrouped": ungrouped,
            **({"distinct_hypotheses": len(set(hyps[u] for u in refs)),
                "constant_baseline": constant_hypothesis_bleu(refs, utt2lang, extra=[hyps[u] for u in refs])}
               if baselines else {})}


def constant_hypothesis_bleu(refs: Mapping[str, str], utt2lang: Mapping[str, str], extra: list[str] = (),
                             candidates: int = 100) -> dict:
    """What one fixed output for every utterance scores ("all": the mean over languages of BLEU), the
    best of the `candidates` commonest references and the commonest `extra` sentence (a system's
    hypotheses). A system near this figure has learned the target language, not the input."""
    ranked = [s for s, _ in sorted(Counter(refs.values()).items(), key=lambda kv: (-kv[1], kv[0]))[:candidates]]
    if extra:
        ranked.append(Counter(extra).most_common(1)[0][0])
    scorers = []
    for utts in by_language(utt2lang, refs).values():
        scorers.append((sacrebleu.BLEU(references=[[refs[u] for u in utts]]), len(utts)))
    best = max((sum(scorer.corpus_score([c] * n, None).score for scorer, n in scorers) / len(scorers), c)
               for c in dict.fromkeys(ranked))
    return {"bleu_all": best[0], "hypothesis": best[1]}


def accuracy(refs: Mapping[str, str], hyps: Mapping[str, str], utt2lang: Mapping[str, str] | None = None) -> dict:
    """Accuracy (percent), per language, per class, and the confusion matrix (rows: reference)."""
    check_ids(refs, hyps)
    classes = sorted(set(refs.values()) | set(hyps.values()))
    index = {c: i for i, c in enumerate(classes)}
    matrix = [[0] * len(classes) for _ in classes]
    for u, r in refs.items():
        matrix[index[r]][index[hyps[u]]] += 1
    correct = {u: refs[u] == hyps[u] for u in refs}
    per_class = {c: 100.0 * matrix[i][i] / max(sum(matrix[i]), 1) for c, i in index.items() if sum(matrix[i])}
    majority, majority_count = Counter(refs.values()).most_common(1)[0] if refs else ("", 0)
    out = {"accuracy": 100.0 * sum(correct.values()) / max(len(refs), 1), "utterances": len(refs),
           "classes": classes, "confusion": matrix, "per_class": per_class,
           # what predicting the test set's commonest class for every utterance scores
           "majority_class": majority, "majority_accuracy": 100.0 * majority_count / max(len(refs), 1)}
    if utt2lang:
        out["languages"] = {lang: {"accuracy": 100.0 * sum(correct[u] for u in utts) / len(utts),
                                   "utterances": len(utts)}
                            for lang, utts in by_language(utt2lang, refs).items()}
    return out
