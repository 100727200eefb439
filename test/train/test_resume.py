"""Exact resume: a run SIGKILLed after its step-10 checkpoint and resumed ends bitwise equal to a
run that was never stopped (CPU, float32), including when its newest checkpoint is corrupt."""
import os
import shutil
import signal
import subprocess
import time

import pytest
import torch

from train_test_utils import REPO, pretrain_command, run_pretrain
from mslam.train.checkpoint import latest_valid_checkpoint, list_checkpoints, load_checkpoint
from mslam.train.progress import read_json_log

SETTINGS = dict(**{"trainer.max_steps": 20, "trainer.save_every": 5, "trainer.keep_checkpoints": 3,
                   "data.num_workers": 2})  # workers build the batches (fbank on the fly)


def losses(out):
    return {r["step"]: r["loss"] for r in read_json_log(out / "train.jsonl")}


def final_params(out):
    return load_checkpoint(latest_valid_checkpoint(out))["model"]


def start_and_kill_after_checkpoint(cmd, out, step):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    marker = out / "checkpoints" / f"step-{step:08d}" / "meta.json"
    deadline = time.time() + 120
    while not marker.exists():
        assert proc.poll() is None, f"the run ended before step {step}: {proc.stderr.read().decode()[-2000:]}"
        assert time.time() < deadline, "no checkpoint after 120 s"
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)  # the trainer and its DataLoader workers, mid-run
    proc.wait()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_sigkill_then_resume_is_bitwise_identical(tiny_corpus, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    run_pretrain(pretrain_command(tiny_corpus, straight, **SETTINGS))
    start_and_kill_after_checkpoint(pretrain_command(tiny_corpus, killed, **SETTINGS), killed, 10)
    reached = max(losses(killed))
    assert reached < 20, "the run finished before it was killed; the test needs a slower step"
    corrupt = tmp_path / "corrupt"
    shutil.copytree(killed, corrupt)

    proc = run_pretrain(pretrain_command(tiny_corpus, killed, resume=True, **SETTINGS))
    assert "resumed from" in proc.stderr
    expected, got = losses(straight), losses(killed)
    assert sorted(got) == list(range(1, 21))
    assert [got[s] for s in range(11, 21)] == [expected[s] for s in range(11, 21)]
    a, b = final_params(straight), final_params(killed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    # A truncated newest checkpoint: the previous one is used, with a warning, and the end is the same.
    newest = list_checkpoints(corrupt)[-1]
    data = (newest / "state.pt").read_bytes()
    (newest / "state.pt").write_bytes(data[: len(data) // 3])
    proc = run_pretrain(pretrain_command(tiny_corpus, corrupt, resume=True, **SETTINGS))
    assert f"{newest.name}" in proc.stderr and "unusable" in proc.stderr
    c = final_params(corrupt)
    assert all(torch.equal(a[k], c[k]) for k in a)
    assert [losses(corrupt)[s] for s in range(11, 21)] == [expected[s] for s in range(11, 21)]


def test_existing_checkpoints_need_resume(tiny_config, tmp_path):
    from mslam.train.checkpoint import CheckpointError, save_checkpoint
    from mslam.train.trainer import pretrain
    save_checkpoint(tmp_path, 5, {"step": 5}, keep=0)
    with pytest.raises(CheckpointError, match="--resume"):
        pretrain(tiny_config(), tmp_path, progress_bar=False)
