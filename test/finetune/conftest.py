"""Fixtures of the fine-tuning tests: the tiny toy corpus with a character vocabulary and small
data dirs of a few short utterances per task (what an overfitting test can learn in seconds)."""
from __future__ import annotations

from pathlib import Path

import pytest

from testlib import shortest_subset

FEW = 4  # utterances per overfitting set


@pytest.fixture(scope="session")
def ft_corpus(tmp_path_factory) -> Path:
    from mslam.bin.build_char_vocab import main as build_char_vocab
    from mslam.data.mini_corpus import generate
    out = tmp_path_factory.mktemp("finetune") / "corpus"
    generate(out, size="tiny", seed=0, nj=2)
    build_char_vocab(["--text-shards", str(out / "text_shards/train"), "--data-dirs", str(out / "asr/train"),
                      str(out / "st/train"), str(out / "mt/train"), "--out", str(out / "chars.txt")])
    shortest_subset(out / "asr/train", out / "few/asr", FEW)
    shortest_subset(out / "st/train", out / "few/st", FEW, distinct="text.en")
    shortest_subset(out / "mt/train", out / "few/mt", FEW, table="text.en", distinct="text.en")
    shortest_subset(out / "intent/train", out / "few/intent", 2 * FEW, distinct="utt2intent")
    shortest_subset(out / "langid/train", out / "few/langid", 2 * FEW, distinct="utt2lang")
    return out
