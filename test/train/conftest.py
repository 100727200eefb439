"""Fixtures for the trainer tests: the tiny toy corpus with its character vocabulary, and a small
pre-training config over it (the tiny model, a few sequences per source)."""
from __future__ import annotations

from pathlib import Path

import pytest

from train_test_utils import tiny_overrides


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    from mslam.bin.build_char_vocab import main as build_char_vocab
    from mslam.data.mini_corpus import generate
    out = tmp_path_factory.mktemp("train") / "corpus"
    generate(out, size="tiny", seed=0, nj=2)
    build_char_vocab(["--text-shards", str(out / "text_shards/train"), "--data-dirs", str(out / "asr/train"),
                      "--out", str(out / "chars.txt")])
    return out


@pytest.fixture
def tiny_config(tiny_corpus):
    """A function: overrides -> the loaded PretrainConfig (the tiny model on the tiny corpus)."""
    from mslam.tasks.pretrain import load_pretrain_config

    def make(**extra):
        return load_pretrain_config("tiny", tiny_overrides(tiny_corpus, **extra))
    return make
