"""Checkpoints that do not fit: another model size for fine-tuning's --init or for the trainer's
--resume, a path that is no checkpoint, a run resumed with other data settings, an output dir that
already holds a run. Each is a CheckpointError naming the file (and the tensors), or a warning."""
from __future__ import annotations

import logging
import re
import shutil

import pytest
import torch
import yaml

from reliability_utils import finetune_dict, pretrain_config, tiny_overrides
from mslam.train.checkpoint import load_model_state


@pytest.fixture(scope="module")
def pretrained(rel_corpus, tmp_path_factory):
    """A 2-step tiny pre-training run (one checkpoint)."""
    from mslam.train.trainer import pretrain
    out = tmp_path_factory.mktemp("pretrained") / "run"
    pretrain(pretrain_config(rel_corpus, **{"trainer.max_steps": 2, "trainer.save_every": 2}), out,
             progress_bar=False)
    return out


def finetune_cli(capsys, rel_corpus, tmp_path, init: str) -> tuple[int, str]:
    from mslam.bin.finetune import main
    config = tmp_path / "ft.yaml"
    config.write_text(yaml.safe_dump(finetune_dict(rel_corpus)))
    code = main(["--config", str(config), "--init", init, "--output-dir", str(tmp_path / "ft"), "--no-progress"])
    return code, capsys.readouterr().err


def test_init_with_a_checkpoint_whose_shapes_differ_names_the_tensors(rel_corpus, pretrained, tmp_path, capsys):
    model, config, _ = load_model_state(pretrained)
    config = {**config, "model": {**config["model"], "encoder": {**config["model"]["encoder"], "d_model": 32,
                                                                  "ffn_dim": 64}}}
    torch.save({"model": model, "config": config}, tmp_path / "other_size.pt")
    code, err = finetune_cli(capsys, rel_corpus, tmp_path, str(tmp_path / "other_size.pt"))
    assert code == 1 and "Traceback" not in err
    assert "finetune: error: --init" in err and "other_size.pt: shapes differ" in err
    assert "speech_frontend.proj.weight (64, 152) vs (32, 152)" in err


@pytest.mark.parametrize("what, match", [
    ("missing", r"no such file or directory"),
    ("not-torch", r"cannot be read as a checkpoint"),
    ("no-model", r"not an mslam checkpoint \(expected a state with 'model' and 'config'\)"),
    ("empty-run", r"neither a checkpoint dir \(state.pt \+ meta.json\) nor a run dir"),
])
def test_init_with_something_that_is_not_a_checkpoint_is_named(rel_corpus, tmp_path, capsys, what, match):
    path = tmp_path / what
    if what == "not-torch":
        path.write_text("not a checkpoint\n")
    elif what == "no-model":
        torch.save({"weights": {}}, path)
    elif what == "empty-run":
        path.mkdir()
    code, err = finetune_cli(capsys, rel_corpus, tmp_path, str(path))
    assert code == 1 and "Traceback" not in err
    assert "finetune: error: " in err and what in err
    assert re.search(match, err), err


def test_resume_with_another_model_size_is_a_checkpoint_error_naming_the_tensors(rel_corpus, pretrained, tmp_path,
                                                                               capsys):
    from mslam.bin.pretrain import main
    run = tmp_path / "run"
    shutil.copytree(pretrained, run)
    sets = tiny_overrides(rel_corpus, **{"trainer.max_steps": 4, "trainer.save_every": 2,
                                         "model.encoder.d_model": 32, "model.encoder.ffn_dim": 64})
    code = main(["--config", "tiny", "--output-dir", str(run), "--resume", "--no-progress", "--set", *sets])
    err = capsys.readouterr().err
    assert code == 1 and "pretrain: error:" in err and "step-00000002" in err
    assert "speech_frontend.proj.weight" in err


def test_resume_with_other_data_settings_warns(rel_corpus, pretrained, tmp_path, caplog):
    from mslam.train.trainer import pretrain
    run = tmp_path / "run"
    shutil.copytree(pretrained, run)
    with caplog.at_level(logging.WARNING, logger="mslam.train"):
        pretrain(pretrain_config(rel_corpus, **{"trainer.max_steps": 3, "trainer.save_every": 2, "trainer.seed": 1}),
                 run, resume=True, progress_bar=False)
    assert "with different data settings (seed)" in caplog.text and "after step 2" in caplog.text


def test_resume_with_another_batch_size_or_temperature_warns(rel_corpus, pretrained, tmp_path, caplog):
    from mslam.train.trainer import pretrain
    run = tmp_path / "run"
    shutil.copytree(pretrained, run)
    other = {"trainer.max_steps": 3, "trainer.save_every": 2,
             "data.speech": "{dirs: [speech/train], batch_sequences: 2, temperature: 5.0}"}
    with caplog.at_level(logging.WARNING, logger="mslam.train"):
        pretrain(pretrain_config(rel_corpus, **other), run, resume=True, progress_bar=False)
    assert "with different data settings" in caplog.text


def test_a_new_run_into_a_dir_that_holds_checkpoints_is_refused(rel_corpus, pretrained, tmp_path, capsys):
    from mslam.bin.pretrain import main
    run = tmp_path / "run"
    shutil.copytree(pretrained, run)
    before = sorted(p.name for p in (run / "checkpoints").iterdir())
    code = main(["--config", "tiny", "--output-dir", str(run), "--no-progress", "--set", *tiny_overrides(rel_corpus)])
    err = capsys.readouterr().err
    assert code == 1 and "already has checkpoints; pass --resume" in err
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == before  # nothing overwritten
