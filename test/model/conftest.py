"""Fixtures for the model tests: real synthetic speech from espeak-ng, as 80-d log-mel features."""
from __future__ import annotations

import shutil

import pytest
import torch

from model_test_utils import UTTERANCES, char_vocab, fbank, synthesize


@pytest.fixture(scope="session")
def espeak_corpus(tmp_path_factory):
    """{'feats': [T_i, 80] (globally mean/variance normalised), 'texts', 'ids': [L_i], 'vocab'}."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (make install installs it; or: apt-get install -y espeak-ng)")
    tmp = tmp_path_factory.mktemp("espeak")
    feats = [fbank(synthesize(v, t, tmp / f"{i}.wav")) for i, (v, t) in enumerate(UTTERANCES)]
    allf = torch.cat(feats)
    mean, std = allf.mean(0), allf.std(0).clamp(min=1e-3)
    feats = [(f - mean) / std for f in feats]
    texts = [t for _, t in UTTERANCES]
    vocab = char_vocab(texts)
    ids = [torch.tensor([vocab[c] for c in t]) for t in texts]
    return {"feats": feats, "texts": texts, "ids": ids, "vocab": vocab}
