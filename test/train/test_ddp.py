"""Two CPU processes (gloo) under torchrun train exactly like one process that accumulates the same
global batch in two micro-batches: same loss trajectory, same parameters (float tolerance)."""
import pytest
import torch

from mslam.train.checkpoint import latest_valid_checkpoint, load_checkpoint
from mslam.train.progress import read_json_log
from train_test_utils import pretrain_command, run_pretrain

STEPS = {"trainer.max_steps": 4, "trainer.save_every": 4}


def trajectory(out):
    return [r["loss"] for r in read_json_log(out / "train.jsonl")]


def final(out):
    return load_checkpoint(latest_valid_checkpoint(out))["model"]


@pytest.fixture(scope="module")
def single_process(tiny_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    run_pretrain(pretrain_command(tiny_corpus, out, **STEPS, **{"trainer.grad_accum": 2}))
    return out


@pytest.mark.slow
def test_ddp_two_processes_match_one_process_with_accumulation(tiny_corpus, tmp_path, single_process):
    run_pretrain(pretrain_command(tiny_corpus, tmp_path, torchrun=2, **STEPS))
    one, two = trajectory(single_process), trajectory(tmp_path)
    assert len(one) == len(two) == 4
    assert two == pytest.approx(one, rel=1e-5)
    a, b = final(single_process), final(tmp_path)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5, msg=k)


@pytest.mark.slow
def test_fsdp2_two_processes_match_one_process(tiny_corpus, tmp_path, single_process):
    run_pretrain(pretrain_command(tiny_corpus, tmp_path, torchrun=2, **STEPS,
                                  **{"trainer.parallel": "fsdp", "trainer.activation_checkpointing": True}))
    assert trajectory(tmp_path) == pytest.approx(trajectory(single_process), rel=1e-4)
    a, b = final(single_process), final(tmp_path)  # gathered into full, unsharded tensors
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
