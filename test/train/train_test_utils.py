"""Helpers of the trainer tests: config overrides for the tiny model on the tiny corpus, and
running the pre-training command in a subprocess."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from testlib import REPO, tiny_overrides  # noqa: F401 (re-exported for the trainer tests)


def pretrain_command(corpus: Path, out: Path, *, torchrun: int = 0, resume: bool = False, **extra) -> list[str]:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(torchrun),
                "--standalone"] if torchrun else [sys.executable]
    cmd = [*launcher, "-m", "mslam.bin.pretrain", "--config", "tiny", "--output-dir", str(out), "--no-progress",
           "--set", *tiny_overrides(corpus, **extra)]
    return cmd + (["--resume"] if resume else [])


def run_pretrain(cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same threads in every run: bitwise-equal results
    # A session of its own, so that a hung run is killed with all its processes (torchrun's workers).
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"{' '.join(cmd)} did not finish in {timeout} s:\n{err[-3000:]}") from None
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{err[-3000:]}"
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
