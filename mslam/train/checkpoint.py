"""Checkpoints: one directory per step, written atomically, verified on load, the last K kept.

    OUTPUT_DIR/checkpoints/step-00001000/state.pt    torch.save of the whole training state
                                        /meta.json   step, size and sha256 of state.pt (written last)

A checkpoint is written into `.tmp-step-.../`, fsync'ed, then renamed: a run killed while writing
leaves a temporary dir (removed on the next save), never a half-written checkpoint. On load, a
checkpoint whose state.pt does not match its meta.json is reported and the previous one is used.
"""
from __future__ import annotations

import json
import logging
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from mslam.data.kaldi import sha256_file

log = logging.getLogger("mslam.train")
PREFIX = "step-"


class CheckpointError(RuntimeError):
    """No usable checkpoint, or one that does not belong to this run."""


def checkpoint_root(output_dir: str | os.PathLike) -> Path:
    return Path(output_dir) / "checkpoints"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(output_dir: str | os.PathLike, step: int, state: dict, keep: int,
                    protect: set[int] = frozenset()) -> Path:
    """Write `state` as the checkpoint of `step`; keep the newest `keep` checkpoints (0: all) and
    those of the steps in `protect` (e.g. the best on dev)."""
    root = checkpoint_root(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".tmp-*"):  # left by a run killed while saving
        shutil.rmtree(stale, ignore_errors=True)
    final = root / f"{PREFIX}{step:08d}"
    tmp = root / f".tmp-{final.name}"
    tmp.mkdir()
    torch.save(state, tmp / "state.pt")
    _fsync(tmp / "state.pt")
    meta = {"step": step, "bytes": (tmp / "state.pt").stat().st_size, "sha256": sha256_file(tmp / "state.pt")}
    (tmp / "meta.json").write_text(json.dumps(meta) + "\n")
    _fsync(tmp / "meta.json")
    _fsync(tmp)
    if final.exists():  # the same step saved again (e.g. after a resume): replace it
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync(root)
    if keep > 0:
        for old in list_checkpoints(output_dir)[:-keep]:
            if checkpoint_step(old) not in protect:
                shutil.rmtree(old, ignore_errors=True)
    return final


def checkpoint_step(path: Path) -> int:
    return int(path.name[len(PREFIX):])


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Checkpoint dirs, oldest first (unverified)."""
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return []
    dirs = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and p.name[len(PREFIX):].isdigit()]
    return sorted(dirs, key=lambda p: int(p.name[len(PREFIX):]))


def verify_checkpoint(path: Path) -> str | None:
    """None if the checkpoint is complete and intact, else what is wrong with it."""
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, ValueError) as e:
        return f"no readable meta.json ({e.__class__.__name__})"
    state = path / "state.pt"
    if not state.is_file():
        return "state.pt is missing"
    if state.stat().st_size != meta.get("bytes"):
        return f"state.pt has {state.stat().st_size} bytes, meta.json says {meta.get('bytes')} (truncated?)"
    if sha256_file(state) != meta.get("sha256"):
        return "state.pt does not match its sha256 (corrupt)"
    return None


def latest_valid_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The newest intact checkpoint; each newer broken one is reported with a warning and skipped."""
    for path in reversed(list_checkpoints(output_dir)):
        problem = verify_checkpoint(path)
        if problem is None:
            return path
        log.warning("checkpoint %s is unusable: %s; trying the previous one", path, problem)
    return None


def load_checkpoint(path: str | os.PathLike) -> dict:
    path = Path(path)
    if path.is_dir():
        problem = verify_checkpoint(path)
        if problem:
            raise CheckpointError(f"checkpoint {path} is unusable: {problem}")
        path = path / "state.pt"
    return torch.load(path, map_location="cpu", weights_only=False)


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """What a user may name as "the checkpoint": a step dir (`.../checkpoints/step-N`), its state.pt or
    meta.json, a .pt file, or a run dir or its `checkpoints/` dir (then its newest intact checkpoint)."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint {path}: no such file or directory (give a checkpoint dir "
                              "OUTPUT_DIR/checkpoints/step-N, a .pt file, or the run's OUTPUT_DIR)")
    if p.is_file() and p.name == "meta.json":
        return p.parent
    if p.is_file() or (p / "state.pt").exists() or (p / "meta.json").exists():
        return p
    run = p.parent if p.name == "checkpoints" else p
    if not list_checkpoints(run):
        raise CheckpointError(f"checkpoint {path}: neither a checkpoint dir (state.pt + meta.json) nor a run "
                              "dir with checkpoints/step-N")
    found = latest_valid_checkpoint(run)
    if found is None:
        raise CheckpointError(f"checkpoint {path}: every checkpoint under {checkpoint_root(run)} is unusable "
                              "(see the warnings above)")
    return found


def load_model_state(path: str | os.PathLike) -> tuple[dict, dict, Path]:
    """(model state dict, config dict, resolved path) of a checkpoint named as `resolve_checkpoint` takes,
    or of a .pt file holding {"model", "config"} (average_checkpoints, fine-tuning's final.pt)."""
    path = resolve_checkpoint(path)
    try:
        state = load_checkpoint(path)  # a dir: verified against meta.json first
    except CheckpointError:
        raise
    except Exception as e:  # not a torch file at all
        raise CheckpointError(f"{path}: cannot be read as a checkpoint ({e.__class__.__name__}: {e})") from e
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict) or not isinstance(
            state.get("config"), dict):
        raise CheckpointError(f"{path}: not an mslam checkpoint (expected a state with 'model' and 'config')")
    return state["model"], state["config"], path


# ----------------------------------------------------------------------------- RNG states
def rng_states() -> dict:
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def average_checkpoints(paths: list[Path]) -> tuple[dict[str, torch.Tensor], dict | None]:
    """The averaged model state dict, and the newest checkpoint's config."""
    total: dict[str, torch.Tensor] = {}
    newest: dict[str, torch.Tensor] = {}
    for path in paths:
        state = load_checkpoint(path)
        config = state.get("config")
        for k, v in state["model"].items():
            newest[k] = v
            if v.is_floating_point():
                total[k] = total[k] + v.double() if k in total else v.double()
    return {k: (total[k] / len(paths)).to(v.dtype) if k in total else v for k, v in newest.items()}, config
