"""Damaged checkpoints and run state: a corrupt or truncated newest checkpoint is detected (size and
sha256 against meta.json), reported with a warning, and the previous one is used, by the trainer's
--resume, by fine-tuning's --init and by checkpoint averaging; a run whose every checkpoint is broken
stops with a clear error; a stale temporary dir is never loaded."""
from __future__ import annotations

import json
import logging

import pytest
import torch

from reliability_utils import checkpoint_models_equal, finetune_dict, pretrain_config, tiny_overrides
from mslam.train.checkpoint import (CheckpointError, latest_valid_checkpoint, list_checkpoints, load_checkpoint,
                                    resolve_checkpoint, save_checkpoint)


def fake_state(step):
    return {"step": step, "model": {"w": torch.full((64,), float(step))}, "config": {"model": {}}}


def damage(ckpt, how: str) -> None:
    state, meta = ckpt / "state.pt", ckpt / "meta.json"
    data = state.read_bytes()
    if how == "truncated":
        state.write_bytes(data[: len(data) // 3])
    elif how == "bit-flip":
        state.write_bytes(data[:100] + bytes([data[100] ^ 0x01]) + data[101:])
    elif how == "empty-state":
        state.write_bytes(b"")
    elif how == "no-state":
        state.unlink()
    elif how == "no-meta":
        meta.unlink()
    elif how == "garbage-meta":
        meta.write_text("{not json")
    elif how == "meta-of-another-file":
        meta.write_text(json.dumps({"step": 2, "bytes": len(data), "sha256": "0" * 64}))
    else:
        raise ValueError(how)


DAMAGES = ["truncated", "bit-flip", "empty-state", "no-state", "no-meta", "garbage-meta", "meta-of-another-file"]


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_newest_checkpoint_is_skipped_with_a_warning(tmp_path, caplog, how):
    save_checkpoint(tmp_path, 1, fake_state(1), keep=0)
    newest = save_checkpoint(tmp_path, 2, fake_state(2), keep=0)
    damage(newest, how)
    with caplog.at_level(logging.WARNING, logger="mslam.train"):
        found = latest_valid_checkpoint(tmp_path)
    assert found.name == "step-00000001"
    assert "step-00000002 is unusable" in caplog.text and "trying the previous one" in caplog.text
    with pytest.raises(CheckpointError, match="unusable"):
        load_checkpoint(newest)


def test_a_stale_temporary_dir_is_never_loaded_and_removed_by_the_next_save(tmp_path):
    save_checkpoint(tmp_path, 1, fake_state(1), keep=0)
    stale = tmp_path / "checkpoints" / ".tmp-step-00000002"
    stale.mkdir()
    torch.save(fake_state(2), stale / "state.pt")  # even a complete-looking one
    (stale / "meta.json").write_text("{}")
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000001"]
    assert latest_valid_checkpoint(tmp_path).name == "step-00000001"
    assert resolve_checkpoint(tmp_path).name == "step-00000001"
    save_checkpoint(tmp_path, 3, fake_state(3), keep=0)
    assert not stale.exists()


def test_init_from_a_run_whose_newest_checkpoint_is_corrupt_uses_the_previous(tmp_path, caplog):
    from mslam.train.checkpoint import load_model_state
    save_checkpoint(tmp_path, 1, fake_state(1), keep=0)
    damage(save_checkpoint(tmp_path, 2, fake_state(2), keep=0), "truncated")
    with caplog.at_level(logging.WARNING, logger="mslam.train"):
        model, _, path = load_model_state(tmp_path)
    assert path.name == "step-00000001" and float(model["w"][0]) == 1.0
    assert "step-00000002 is unusable" in caplog.text


def test_every_checkpoint_corrupt_stops_resume_with_a_clear_error(rel_corpus, tmp_path, capsys):
    from mslam.bin.pretrain import main
    for step in (2, 4):
        damage(save_checkpoint(tmp_path, step, fake_state(step), keep=0), "truncated")
    code = main(["--config", "tiny", "--output-dir", str(tmp_path), "--resume", "--no-progress", "--set",
                 *tiny_overrides(rel_corpus)])
    err = capsys.readouterr().err
    assert code == 1
    assert "pretrain: error:" in err and "every checkpoint is unusable" in err and "Traceback" not in err


def test_average_checkpoints_skips_a_corrupt_one_with_a_warning(tmp_path, caplog, capsys):
    from mslam.bin.average_checkpoints import main
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, fake_state(step), keep=0)
    damage(list_checkpoints(tmp_path)[-1], "bit-flip")
    with caplog.at_level(logging.WARNING, logger="mslam.average"):
        assert main(["--exp-dir", str(tmp_path), "--last", "2", "--out", str(tmp_path / "avg.pt")]) == 0
    avg = torch.load(tmp_path / "avg.pt", weights_only=False)
    assert avg["steps"] == [1, 2] and float(avg["model"]["w"][0]) == 1.5
    assert "skipping" in caplog.text and "step-00000003" in caplog.text


def test_pretrain_resume_after_a_truncated_newest_checkpoint_matches_an_uninterrupted_run(
        rel_corpus, tmp_path, one_thread, caplog):
    from mslam.train.trainer import pretrain
    settings = {"trainer.save_every": 2, "trainer.keep_checkpoints": 0}
    pretrain(pretrain_config(rel_corpus, **settings, **{"trainer.max_steps": 6}), tmp_path / "straight",
             progress_bar=False)
    pretrain(pretrain_config(rel_corpus, **settings, **{"trainer.max_steps": 4}), tmp_path / "run",
             progress_bar=False)
    damage(tmp_path / "run/checkpoints/step-00000004", "truncated")
    with caplog.at_level(logging.INFO, logger="mslam.train"):
        pretrain(pretrain_config(rel_corpus, **settings, **{"trainer.max_steps": 6}), tmp_path / "run", resume=True,
                 progress_bar=False)
    assert "step-00000004 is unusable" in caplog.text and "(step 2)" in caplog.text
    for step in (4, 6):  # step 4 was redone (the broken checkpoint replaced), then the run went on
        name = f"step-{step:08d}"
        straight, resumed = tmp_path / "straight/checkpoints" / name, tmp_path / "run/checkpoints" / name
        assert checkpoint_models_equal(straight, resumed) == []
    assert latest_valid_checkpoint(tmp_path / "run").name == "step-00000006"


def test_decoding_with_a_truncated_final_model_or_checkpoint_is_a_clear_error(rel_corpus, tmp_path, capsys):
    from mslam.bin.decode import main as decode_main
    from mslam.tasks.finetune import finetune, load_finetune_config
    exp = tmp_path / "exp"
    finetune(load_finetune_config(finetune_dict(rel_corpus, steps=2)), exp, progress_bar=False)
    args = ["--exp-dir", str(exp), "--data", str(rel_corpus / "few/intent"), "--out-dir", str(tmp_path / "dec"),
            "--no-progress"]
    data = (exp / "final.pt").read_bytes()
    (exp / "final.pt").write_bytes(data[: len(data) // 2])
    assert decode_main(args) == 1
    err = capsys.readouterr().err
    assert "decode: error:" in err and "final.pt: cannot be read as a checkpoint" in err
    damage(exp / "checkpoints/step-00000002", "bit-flip")
    assert decode_main(args + ["--checkpoint", str(exp / "checkpoints/step-00000002")]) == 1
    err = capsys.readouterr().err
    assert "step-00000002 is unusable: state.pt does not match its sha256" in err
    assert not (tmp_path / "dec").exists()


def test_a_torn_last_line_of_the_json_log_does_not_stop_resume(tmp_path):
    from mslam.train.progress import TrainReport
    log = tmp_path / "train.jsonl"
    log.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.9}\n{"step": 3, "lo')
    report = TrainReport(tmp_path, start_step=2, max_steps=4, enabled=True, tensorboard=False, progress_bar=False)
    report.close()
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2]
