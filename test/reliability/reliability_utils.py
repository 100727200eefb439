"""Helpers of the fault-injection suite: the tiny pre-training and fine-tuning configs, runners for the
commands in a subprocess that a test may kill (at a named point, or at a random moment), and
checkpoint comparisons. The tiny configs and subsets come from test/testlib.py."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from testlib import REPO, TINY_HEAD, TINY_MODEL, shortest_subset, tiny_overrides  # noqa: F401 (re-exported)

HERE = Path(__file__).resolve().parent
FAULT_RUNNER = HERE / "fault_runner.py"


# ----------------------------------------------------------------------------- configs
def pretrain_config(corpus: Path, **extra):
    from mslam.tasks.pretrain import load_pretrain_config
    return load_pretrain_config("tiny", tiny_overrides(corpus, **extra))


def finetune_dict(corpus: Path, task: str = "intent", train: str = "few/intent", steps: int = 6, **sections) -> dict:
    """A tiny fine-tuning config (a plain dict, to be loaded or written as YAML)."""
    cfg = {"task": task, "model": TINY_MODEL, "head": TINY_HEAD, "spec_augment": {"freq_masks": 1, "time_masks": 1},
           "data": {"root": str(corpus), "train": [train], "dev": [train], "char_vocab": "chars.txt",
                    "spm_vocab_size": 60, "num_workers": 0},
           "optim": {"encoder_lr": 2e-3, "encoder_warmup": 10, "head_lr": 2e-3, "head_warmup": 10},
           "trainer": {"max_steps": steps, "eval_every": 2, "save_every": 2, "log_every": 1, "keep_checkpoints": 1,
                       "keep_best": 1, "tensorboard": False, "device": "cpu", "average_best": 2}}
    for name, values in sections.items():
        cfg[name] = {**(cfg.get(name) or {}), **values} if isinstance(values, dict) else values
    return cfg


# ----------------------------------------------------------------------------- subprocesses
def child_env() -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def module_command(module: str, args: list[str], kill_at: str | None = None, kill_step: int = 0) -> list[str]:
    """`python -m module args`, or the same through fault_runner.py, which SIGKILLs the process at a
    named point of a checkpoint save (see fault_runner.py)."""
    if kill_at is None:
        return [sys.executable, "-m", module, *args]
    return [sys.executable, str(FAULT_RUNNER), kill_at, str(kill_step), module, *args]


def run_until_killed(cmd: list[str], timeout: float = 120) -> str:
    """Run a command that is meant to SIGKILL itself; return its stderr."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        raise AssertionError(f"{' '.join(cmd)} did not finish in {timeout} s:\n{err[-3000:]}") from None
    assert proc.returncode == -signal.SIGKILL, \
        f"expected the run to be SIGKILLed, it exited with {proc.returncode}:\n{err[-3000:]}"
    return err


def kill_at_random_moment(cmd: list[str], log: Path, max_step: int, rng: random.Random,
                          timeout: float = 120) -> tuple[int, float]:
    """Start `cmd`, wait until its JSON log has a record of a step drawn at random in [1, max_step],
    wait a random fraction of a step more, and SIGKILL its whole process group. Returns (step, delay)."""
    import tempfile
    step = rng.randint(1, max_step)
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: a chatty child never blocks on it
        proc = subprocess.Popen(cmd, cwd=REPO, env=child_env(), stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)

        def stderr_tail() -> str:
            err.seek(0)
            return err.read().decode(errors="replace")[-2000:]

        deadline = time.time() + timeout
        t_first, step_time = None, 0.3
        try:
            while True:
                assert proc.poll() is None, f"the run ended before step {step}: {stderr_tail()}"
                assert time.time() < deadline, f"no step {step} after {timeout} s: {stderr_tail()}"
                steps = _logged_steps(log)
                if steps and t_first is None:
                    t_first = time.time()
                if step in steps:
                    if len(steps) > 1:
                        step_time = max(0.05, (time.time() - t_first) / (len(steps) - 1))
                    break
                time.sleep(0.005)
            delay = rng.uniform(0, step_time)
            time.sleep(delay)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the command and any DataLoader workers
            except ProcessLookupError:  # it had ended already
                pass
            proc.wait()
    return step, delay


def _logged_steps(log: Path) -> list[int]:
    import json
    if not log.exists():
        return []
    steps = []
    for line in log.read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except (ValueError, KeyError):
            pass  # a line being written
    return steps


# ----------------------------------------------------------------------------- checkpoints
def checkpoint_models_equal(a: Path, b: Path) -> list[str]:
    """Names of the tensors that differ between two checkpoints' (or .pt files') models."""
    import torch
    sa = torch.load(a if a.is_file() else a / "state.pt", map_location="cpu", weights_only=False)["model"]
    sb = torch.load(b if b.is_file() else b / "state.pt", map_location="cpu", weights_only=False)["model"]
    assert sa.keys() == sb.keys()
    return [k for k in sa if not torch.equal(sa[k], sb[k])]


def assert_no_half_written_checkpoint(out: Path) -> None:
    """Every checkpoint the trainer would consider is complete; temporary dirs are never listed."""
    from mslam.train.checkpoint import list_checkpoints, verify_checkpoint
    for path in list_checkpoints(out):
        assert not path.name.startswith("."), path
        problem = verify_checkpoint(path)
        assert problem is None, f"{path.name}: {problem}"


# ----------------------------------------------------------------------------- small data dirs
def synthetic_data_dir(root: Path, name: str = "data", seconds=(1.0, 1.5, 2.0), texts=None, langs=None,
                       rate: int = 16000) -> Path:
    """A data dir of tones (wav.scp, text, utt2spk, utt2lang, utt2num_samples), utterances u1, u2, ..."""
    import numpy as np
    import soundfile
    from mslam.data.kaldi import Utterance, write_data_dir
    audio = root / f"{name}_audio"
    audio.mkdir(parents=True, exist_ok=True)
    utts = []
    for i, sec in enumerate(seconds, 1):
        n = int(sec * rate)
        x = (0.3 * np.sin(2 * np.pi * (200 + 50 * i) * np.arange(n) / rate)).astype(np.float32)
        wav = audio / f"u{i}.wav"
        soundfile.write(wav, x, rate, subtype="PCM_16")
        text = texts[i - 1] if texts is not None else f"eins zwei {i}"
        lang = langs[i - 1] if langs is not None else "de"
        utts.append(Utterance(id=f"u{i}", wav=str(wav), text=text, speaker=f"s{i}", lang=lang, num_samples=n))
    write_data_dir(root / name, utts)
    return root / name
