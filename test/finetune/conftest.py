"""Fixtures of the fine-tuning tests: the tiny toy corpus with a character vocabulary and small
data dirs of a few short utterances per task (what an overfitting test can learn in seconds)."""
from __future__ import annotations

from pathlib import Path

import pytest

FEW = 4  # utterances per overfitting set


def _shortest(src: Path, dst: Path, n: int, table: str = "utt2num_samples", distinct: str | None = None) -> Path:
    """The n shortest utterances of a data dir (with distinct values of table `distinct`)."""
    from mslam.data.kaldi import read_table, subset_data_dir
    size = read_table(src / table)
    key = (lambda u: int(size[u])) if table == "utt2num_samples" else (lambda u: len(size[u]))
    labels = read_table(src / distinct) if distinct else {}
    chosen, seen = [], set()
    for u in sorted(size, key=lambda u: (key(u), u)):
        if distinct and labels[u] in seen:
            continue
        seen.add(labels.get(u))
        chosen.append(u)
        if len(chosen) == n:
            break
    subset_data_dir(src, dst, utt_list=chosen)
    return dst


@pytest.fixture(scope="session")
def ft_corpus(tmp_path_factory) -> Path:
    from mslam.bin.build_char_vocab import main as build_char_vocab
    from mslam.data.mini_corpus import generate
    out = tmp_path_factory.mktemp("finetune") / "corpus"
    generate(out, size="tiny", seed=0, nj=2)
    build_char_vocab(["--text-shards", str(out / "text_shards/train"), "--data-dirs", str(out / "asr/train"),
                      str(out / "st/train"), str(out / "mt/train"), "--out", str(out / "chars.txt")])
    _shortest(out / "asr/train", out / "few/asr", FEW)
    _shortest(out / "st/train", out / "few/st", FEW, distinct="text.en")
    _shortest(out / "mt/train", out / "few/mt", FEW, table="text.en", distinct="text.en")
    _shortest(out / "intent/train", out / "few/intent", 2 * FEW, distinct="utt2intent")
    _shortest(out / "langid/train", out / "few/langid", 2 * FEW, distinct="utt2lang")
    return out
