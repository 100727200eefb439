import json
import logging
import random

import numpy as np
import pytest
import torch

from mslam.train.checkpoint import (latest_valid_checkpoint, list_checkpoints, load_checkpoint, restore_rng_states,
                                    rng_states, save_checkpoint, verify_checkpoint)


def state(step):
    return {"step": step, "model": {"w": torch.full((3,), float(step))}}


def test_save_writes_complete_checkpoints_and_keeps_the_last_k(tmp_path):
    for step in (10, 20, 30, 40):
        path = save_checkpoint(tmp_path, step, state(step), keep=2)
        assert verify_checkpoint(path) is None
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000030", "step-00000040"]
    meta = json.loads((list_checkpoints(tmp_path)[-1] / "meta.json").read_text())
    assert meta["step"] == 40 and meta["bytes"] > 0 and len(meta["sha256"]) == 64
    assert load_checkpoint(latest_valid_checkpoint(tmp_path))["step"] == 40
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


def test_a_stale_temporary_dir_from_a_killed_save_is_ignored_and_removed(tmp_path):
    save_checkpoint(tmp_path, 5, state(5), keep=0)
    stale = tmp_path / "checkpoints" / ".tmp-step-00000010"
    stale.mkdir()
    (stale / "state.pt").write_bytes(b"half a checkpoint")
    assert load_checkpoint(latest_valid_checkpoint(tmp_path))["step"] == 5
    save_checkpoint(tmp_path, 10, state(10), keep=0)
    assert not stale.exists()


@pytest.mark.parametrize("damage", ["truncate", "flip", "no_meta"])
def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous_with_a_warning(tmp_path, caplog, damage):
    save_checkpoint(tmp_path, 1, state(1), keep=0)
    newest = save_checkpoint(tmp_path, 2, state(2), keep=0)
    data = (newest / "state.pt").read_bytes()
    if damage == "truncate":
        (newest / "state.pt").write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        (newest / "state.pt").write_bytes(data[:-10] + bytes(b ^ 0xFF for b in data[-10:]))
    else:
        (newest / "meta.json").unlink()
    with caplog.at_level(logging.WARNING, logger="mslam.train"):
        path = latest_valid_checkpoint(tmp_path)
    assert path.name == "step-00000001"
    assert "step-00000002 is unusable" in caplog.text
    with pytest.raises(RuntimeError, match="unusable"):
        load_checkpoint(newest)


def test_rng_states_round_trip():
    saved = rng_states()
    a = (random.random(), np.random.rand(), torch.rand(2))
    restore_rng_states(saved)
    b = (random.random(), np.random.rand(), torch.rand(2))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
