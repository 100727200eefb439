"""The tiny toy corpus, generated once per test session (a few seconds of espeak-ng)."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mini_corpus(tmp_path_factory) -> Path:
    from mslam.data.mini_corpus import generate
    out = tmp_path_factory.mktemp("mini") / "corpus"
    generate(out, size="tiny", seed=0, nj=2)
    return out
