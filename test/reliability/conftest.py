"""Fixtures of the fault-injection suite (helpers: reliability_utils.py; the injector: fault_runner.py).

Nothing is imported from other test directories: the bits needed are copied, so that this suite runs
on its own (`pytest -c test/pytest.ini --rootdir . test/reliability`). The corpus comes from the
repository's `mini_corpus` fixture (test/conftest.py), copied so that tests may add data dirs to it.
"""
from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest

from reliability_utils import shortest_subset


@pytest.fixture(scope="session")
def rel_corpus(mini_corpus, tmp_path_factory) -> Path:
    """A private copy of the tiny toy corpus (its audio stays where it is), with chars.txt, few/intent
    (8 short utterances, distinct intents) and few/asr (4 short utterances)."""
    from mslam.bin.build_char_vocab import main as build_char_vocab
    out = tmp_path_factory.mktemp("reliability") / "corpus"
    shutil.copytree(mini_corpus, out, ignore=shutil.ignore_patterns("audio"))
    build_char_vocab(["--text-shards", str(out / "text_shards/train"), "--data-dirs", str(out / "asr/train"),
                      str(out / "st/train"), str(out / "mt/train"), "--out", str(out / "chars.txt")])
    shortest_subset(out / "intent/train", out / "few/intent", 8, distinct="utt2intent")
    shortest_subset(out / "asr/train", out / "few/asr", 4)
    return out


@pytest.fixture
def one_thread():
    """Compute with one thread, as the subprocesses do (OMP_NUM_THREADS=1): bitwise-equal results."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def fault_rng(request):
    """A random generator for fault timing. Its seed is printed (shown when a test fails) and can be
    fixed with RELIABILITY_SEED=N to replay a failure."""
    seed = int(os.environ.get("RELIABILITY_SEED") or random.SystemRandom().randrange(2 ** 32))
    print(f"{request.node.nodeid}: RELIABILITY_SEED={seed}")
    return random.Random(seed)


