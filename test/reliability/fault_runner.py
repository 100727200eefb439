"""Run an mslam command and SIGKILL it at one named point of a checkpoint (or final model) save.

    python fault_runner.py POINT STEP MODULE [ARGS...]      e.g. ... state-write 4 mslam.bin.pretrain --config ...

POINT (STEP: the checkpoint step the fault hits):
    state-write    half of .tmp-step-N/state.pt is on disk, then the process dies
    before-meta    .tmp-step-N/state.pt is complete, meta.json is not written yet
    before-rename  .tmp-step-N/ is complete (state.pt + meta.json), not renamed to step-N yet
    after-rename   step-N/ is in place; older checkpoints are not pruned yet
    final-write    (fine-tuning) half of .final.pt.tmp is on disk (STEP is ignored)

The process kills itself with SIGKILL (no cleanup, no atexit, no flush), exactly as `kill -9` would.
"""
from __future__ import annotations

import io
import os
import runpy
import signal
import sys
from pathlib import Path


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def write_half(obj, path: Path, save) -> None:
    buf = io.BytesIO()
    save(obj, buf)
    data = buf.getvalue()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
        f.flush()
        os.fsync(f.fileno())
    die()


def install(point: str, step: int) -> None:
    import torch
    import mslam.train.checkpoint as C

    tmp_name = f".tmp-step-{step:08d}"
    final_name = f"step-{step:08d}"
    real_save, real_sha, real_replace, real_fsync = torch.save, C.sha256_file, os.replace, C._fsync

    if point == "state-write":
        def save(obj, f, *args, **kwargs):
            if isinstance(f, (str, os.PathLike)) and Path(f).name == "state.pt" and Path(f).parent.name == tmp_name:
                write_half(obj, Path(f), real_save)
            return real_save(obj, f, *args, **kwargs)
        torch.save = save
    elif point == "before-meta":
        def sha256_file(path):
            if Path(path).parent.name == tmp_name:
                die()
            return real_sha(path)
        C.sha256_file = sha256_file
    elif point == "before-rename":
        def replace(src, dst, *args, **kwargs):
            if Path(src).name == tmp_name:
                die()
            return real_replace(src, dst, *args, **kwargs)
        os.replace = replace
    elif point == "after-rename":
        def fsync(path):
            path = Path(path)
            if path.name == "checkpoints" and (path / final_name).is_dir():
                die()
            return real_fsync(path)
        C._fsync = fsync
    elif point == "final-write":
        def save(obj, f, *args, **kwargs):
            if isinstance(f, (str, os.PathLike)) and Path(f).name == ".final.pt.tmp":
                write_half(obj, Path(f), real_save)
            return real_save(obj, f, *args, **kwargs)
        torch.save = save
    else:
        raise SystemExit(f"fault_runner: unknown point {point!r}")


def main() -> None:
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    point, step, module, *args = sys.argv[1:]
    install(point, int(step))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    raise SystemExit(f"fault_runner: the run ended without reaching {point} at step {step}")


if __name__ == "__main__":
    main()
