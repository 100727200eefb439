"""SIGKILL of fine-tuning (intent on 8 utterances, dev evaluation every 2 steps): inside a checkpoint
save, while writing final.pt, and at a random moment. `--resume` then ends with the same checkpoints,
the same dev history and the same final.pt as a run that was never stopped."""
from __future__ import annotations

import pytest
import yaml

from reliability_utils import (assert_no_half_written_checkpoint, checkpoint_models_equal, finetune_dict,
                               kill_at_random_moment, module_command, run_until_killed)
from mslam.train.checkpoint import checkpoint_step, latest_valid_checkpoint, list_checkpoints


def write_config(corpus, path):
    path.write_text(yaml.safe_dump(finetune_dict(corpus)))
    return path


def cli_args(config, out) -> list[str]:
    return ["--config", str(config), "--output-dir", str(out), "--no-progress"]


@pytest.fixture(scope="module")
def straight(rel_corpus, tmp_path_factory):
    import torch
    from mslam.tasks.finetune import finetune, load_finetune_config
    out = tmp_path_factory.mktemp("finetune_straight")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        finetune(load_finetune_config(finetune_dict(rel_corpus)), out, progress_bar=False)
    finally:
        torch.set_num_threads(before)
    return out


def resume_and_compare(corpus, config, out, straight):
    from mslam.tasks.finetune import finetune, load_finetune_config
    finetune(load_finetune_config(config), out, resume=True, progress_bar=False)
    assert not list((out / "checkpoints").glob(".tmp-*"))
    assert not (out / ".final.pt.tmp").exists()
    names = [p.name for p in list_checkpoints(straight)]
    assert [p.name for p in list_checkpoints(out)] == names
    for name in names:
        assert checkpoint_models_equal(straight / "checkpoints" / name, out / "checkpoints" / name) == [], name
    assert checkpoint_models_equal(straight / "final.pt", out / "final.pt") == []
    assert (out / "dev.jsonl").read_text() == (straight / "dev.jsonl").read_text()
    assert (out / "train.jsonl").read_text().count("\n") == (straight / "train.jsonl").read_text().count("\n")


def test_finetune_killed_while_writing_a_checkpoint_resumes_exactly(rel_corpus, straight, tmp_path, one_thread):
    config, out = write_config(rel_corpus, tmp_path / "ft.yaml"), tmp_path / "run"
    run_until_killed(module_command("mslam.bin.finetune", cli_args(config, out), kill_at="state-write", kill_step=4))
    assert_no_half_written_checkpoint(out)
    assert (out / "checkpoints" / ".tmp-step-00000004" / "state.pt").is_file()  # the half-written one
    assert checkpoint_step(latest_valid_checkpoint(out)) == 2
    resume_and_compare(rel_corpus, config, out, straight)


def test_finetune_killed_while_writing_final_pt_resumes_exactly(rel_corpus, straight, tmp_path, one_thread):
    config, out = write_config(rel_corpus, tmp_path / "ft.yaml"), tmp_path / "run"
    run_until_killed(module_command("mslam.bin.finetune", cli_args(config, out), kill_at="final-write"))
    assert not (out / "final.pt").exists(), "a half-written final model must never carry the final name"
    assert (out / ".final.pt.tmp").is_file()
    assert_no_half_written_checkpoint(out)
    assert checkpoint_step(latest_valid_checkpoint(out)) == 6
    resume_and_compare(rel_corpus, config, out, straight)


def test_finetune_killed_at_a_random_moment_resumes_exactly(rel_corpus, straight, tmp_path, one_thread, fault_rng):
    config, out = write_config(rel_corpus, tmp_path / "ft.yaml"), tmp_path / "run"
    step, delay = kill_at_random_moment(module_command("mslam.bin.finetune", cli_args(config, out)),
                                        out / "train.jsonl", max_step=4, rng=fault_rng)
    print(f"killed {delay:.3f} s after step {step} was logged")
    assert_no_half_written_checkpoint(out)
    assert not (out / "final.pt").exists()
    resume_and_compare(rel_corpus, config, out, straight)
