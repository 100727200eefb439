"""Fixtures for the ESPnet bridge: mslam pre-training checkpoints made from the `tiny` config."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mslam.config import config_to_dict
from mslam.tasks.pretrain import build_pretrain_model, load_pretrain_config
from mslam.train.checkpoint import save_checkpoint


def write_checkpoint(out_dir: Path, step: int = 3, seed: int = 0, overrides: list[str] = ()):
    """A pre-training run's checkpoint `out_dir/checkpoints/step-N`, as the trainer writes it:
    (step dir, the PretrainModel whose state it holds)."""
    cfg = load_pretrain_config("tiny", list(overrides))
    torch.manual_seed(seed)
    model = build_pretrain_model(cfg)
    state = {"step": step, "model": model.state_dict(), "config": config_to_dict(cfg)}
    return save_checkpoint(out_dir, step, state, keep=0), model


@pytest.fixture
def make_checkpoint():
    return write_checkpoint


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """(pre-training output dir, its step dir, the PretrainModel saved there)."""
    out = tmp_path_factory.mktemp("pretrain") / "exp"
    step_dir, model = write_checkpoint(out)
    return out, step_dir, model
