"""SIGKILL of pre-training: at four points inside a checkpoint save, and at a random moment. After each,
no checkpoint is half-written (a `.tmp-step-*` dir may remain, is never loaded, and is removed by the
next save), and `--resume` ends bitwise equal to a run that was never stopped (CPU, one thread)."""
from __future__ import annotations

import pytest

from reliability_utils import (assert_no_half_written_checkpoint, checkpoint_models_equal, kill_at_random_moment,
                      module_command, pretrain_config, run_until_killed, tiny_overrides)
from mslam.train.checkpoint import checkpoint_step, latest_valid_checkpoint, list_checkpoints
from mslam.train.progress import read_json_log

SETTINGS = {"trainer.max_steps": 8, "trainer.save_every": 2, "trainer.keep_checkpoints": 1}
LAST = "step-00000008"


def cli_args(corpus, out, **extra) -> list[str]:
    return ["--config", "tiny", "--output-dir", str(out), "--no-progress", "--set",
            *tiny_overrides(corpus, **{**SETTINGS, **extra})]


def losses(out) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_json_log(out / "train.jsonl")}


@pytest.fixture(scope="module")
def straight(rel_corpus, tmp_path_factory):
    """The uninterrupted run (one thread, as the killed subprocesses)."""
    import torch
    from mslam.train.trainer import pretrain
    out = tmp_path_factory.mktemp("pretrain_straight")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pretrain(pretrain_config(rel_corpus, **SETTINGS), out, progress_bar=False)
    finally:
        torch.set_num_threads(before)
    return out


def resume_and_compare(corpus, out, straight):
    from mslam.train.trainer import pretrain
    pretrain(pretrain_config(corpus, **SETTINGS), out, resume=True, progress_bar=False)
    root = out / "checkpoints"
    assert not list(root.glob(".tmp-*")), "the next save must remove a killed save's temporary dir"
    assert [p.name for p in list_checkpoints(out)] == [LAST]
    assert checkpoint_models_equal(straight / "checkpoints" / LAST, root / LAST) == []
    assert losses(out) == losses(straight)


# (kill point, the newest intact checkpoint after the kill, whether the temporary dir is left)
POINTS = {
    "state-write": (2, True),     # half of state.pt on disk
    "before-meta": (2, True),     # state.pt complete, no meta.json
    "before-rename": (2, True),   # complete temporary dir, not renamed
    "after-rename": (4, False),   # renamed, step 2 not pruned yet
}


@pytest.mark.parametrize("point", list(POINTS))
def test_pretrain_killed_while_saving_a_checkpoint_resumes_exactly(rel_corpus, straight, tmp_path, one_thread,
                                                                   point):
    newest, tmp_left = POINTS[point]
    out = tmp_path / "run"
    run_until_killed(module_command("mslam.bin.pretrain", cli_args(rel_corpus, out), kill_at=point, kill_step=4))
    assert_no_half_written_checkpoint(out)
    tmp = out / "checkpoints" / ".tmp-step-00000004"
    assert tmp.is_dir() == tmp_left
    assert checkpoint_step(latest_valid_checkpoint(out)) == newest
    if point == "after-rename":
        assert [p.name for p in list_checkpoints(out)] == ["step-00000002", "step-00000004"]
    resume_and_compare(rel_corpus, out, straight)


def test_pretrain_killed_at_a_random_moment_resumes_exactly(rel_corpus, straight, tmp_path, one_thread, fault_rng):
    out = tmp_path / "run"
    step, delay = kill_at_random_moment(module_command("mslam.bin.pretrain", cli_args(rel_corpus, out)),
                                        out / "train.jsonl", max_step=7, rng=fault_rng)
    print(f"killed {delay:.3f} s after step {step} was logged")
    assert_no_half_written_checkpoint(out)
    latest = latest_valid_checkpoint(out)
    assert latest is None or checkpoint_step(latest) <= 8
    resume_and_compare(rel_corpus, out, straight)


def test_pretrain_killed_with_dataloader_workers_resumes_exactly(rel_corpus, straight, tmp_path, one_thread,
                                                                fault_rng):
    """The trainer and its DataLoader worker processes, killed together (the whole process group)."""
    out = tmp_path / "run"
    cmd = module_command("mslam.bin.pretrain", cli_args(rel_corpus, out, **{"data.num_workers": 1}))
    kill_at_random_moment(cmd, out / "train.jsonl", max_step=7, rng=fault_rng)
    assert_no_half_written_checkpoint(out)
    resume_and_compare(rel_corpus, out, straight)
