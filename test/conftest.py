"""Shared fixtures: real speech spoken by espeak-ng (installed by `make install`), no mocks."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# (utterance id, espeak-ng voice, text): a few languages and two scripts.
SPOKEN = [
    ("de-a-001", "de", "zweiundvierzig"),
    ("de-a-002", "de", "dreihundertsiebzehn"),
    ("fr-b-001", "fr", "quarante-deux"),
    ("ru-c-001", "ru", "сорок два"),
]


def speak(text: str, voice: str, path: Path, rate: int = 160) -> Path:
    """Synthesize `text` with espeak-ng into a 22.05 kHz wav file."""
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "--stdout", text],
                         check=True, stdout=subprocess.PIPE).stdout
    path.write_bytes(wav)
    return path


@pytest.fixture(scope="session")
def spoken_dir(tmp_path_factory) -> Path:
    """A data dir of real speech: wav.scp (22.05 kHz files), text, utt2spk, utt2lang."""
    from mslam.data.kaldi import Utterance, write_data_dir
    root = tmp_path_factory.mktemp("spoken")
    utts = []
    for utt, voice, text in SPOKEN:
        wav = speak(text, voice, root / f"{utt}.wav")
        utts.append(Utterance(id=utt, wav=str(wav), text=text, speaker=utt.rsplit("-", 1)[0], lang=voice))
    write_data_dir(root / "data", utts)
    return root / "data"


@pytest.fixture(scope="session")
def mini_corpus(tmp_path_factory) -> Path:
    """The tiny egs/mini toy corpus, generated once per test session (a few seconds of espeak-ng)."""
    from mslam.data.mini_corpus import generate
    out = tmp_path_factory.mktemp("mini") / "corpus"
    generate(out, size="tiny", seed=0, nj=2)
    return out


@pytest.fixture(scope="session")
def fixture_tree(tmp_path_factory, mini_corpus) -> Path:
    """The download fixture tree (mslam.data.fixtures): each real corpus's server layout, filled with
    the tiny toy corpus; OUT/<corpus>/<path> is what `<url base>/<path>` serves. Built once per session."""
    from mslam.data.fixtures import make_fixtures
    out = tmp_path_factory.mktemp("fixtures") / "tree"
    make_fixtures(out, corpus_dir=mini_corpus, seed=0)
    return out
