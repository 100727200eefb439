"""Bad configs: each is answered by a ConfigError that names the file and the key (and, through the
commands, by one `error:` line and exit status 1, not a traceback)."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import yaml

from reliability_utils import finetune_dict, tiny_overrides
from mslam.config import ConfigError, load_config
from mslam.tasks.pretrain import load_pretrain_config


def write_yaml(path, text: str):
    path.write_text(text)
    return path


def run_pretrain_cli(capsys, out, config="tiny", sets=()) -> tuple[int, str]:
    from mslam.bin.pretrain import main
    args = ["--config", str(config), "--output-dir", str(out), "--no-progress"]
    code = main(args + (["--set", *sets] if sets else []))
    return code, capsys.readouterr().err


def run_finetune_cli(capsys, args) -> tuple[int, str]:
    from mslam.bin.finetune import main
    code = main([*args, "--no-progress"])
    return code, capsys.readouterr().err


def test_unknown_key_names_file_key_path_and_the_closest_valid_key(tmp_path, capsys):
    cfg = write_yaml(tmp_path / "bad.yaml", "trainer:\n  max_step: 5\n")
    with pytest.raises(ConfigError) as e:
        load_pretrain_config(cfg)
    msg = str(e.value)
    assert str(cfg) in msg and "trainer.max_step: unknown key 'max_step'" in msg and "did you mean 'max_steps'" in msg
    code, err = run_pretrain_cli(capsys, tmp_path / "out", cfg)
    assert code == 1 and "pretrain: error:" in err and "max_step" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_unknown_nested_key_given_by_override_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"model\.encoder\.d_modle: unknown key .*did you mean 'd_model'"):
        load_pretrain_config("tiny", ["model.encoder.d_modle=32"])


def test_wrong_type_names_key_expected_type_and_value(tmp_path):
    cfg = write_yaml(tmp_path / "bad.yaml", "trainer:\n  max_steps: many\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: trainer\.max_steps: expected int, got str 'many'"):
        load_pretrain_config(cfg)


def test_a_value_outside_a_choice_lists_the_choices(tmp_path):
    with pytest.raises(ConfigError, match=r"trainer\.device: expected one of 'auto', 'cpu', 'cuda', got str 'gpu'"):
        load_pretrain_config("tiny", ["trainer.device=gpu"])


def test_an_out_of_range_value_is_named():
    with pytest.raises(ConfigError, match=r"trainer: max_steps must be >= 1, got 0"):
        load_pretrain_config("tiny", ["trainer.max_steps=0"])


@dataclass
class _Needs:
    name: str
    size: int = 1


def test_a_missing_required_key_is_named(tmp_path):
    """The loader's rule for a schema field without a default (the shipped schemas have defaults for
    everything; what they need in practice is checked by the task: next test)."""
    cfg = write_yaml(tmp_path / "needs.yaml", "size: 2\n")
    with pytest.raises(ConfigError, match=r"needs\.yaml: name: missing required key 'name' \(str\)"):
        load_config(cfg, _Needs)


def test_a_finetuning_config_without_training_data_is_named(rel_corpus, tmp_path, capsys):
    cfg = finetune_dict(rel_corpus)
    cfg["data"]["train"] = []
    path = write_yaml(tmp_path / "ft.yaml", yaml.safe_dump(cfg))
    code, err = run_finetune_cli(capsys, ["--config", str(path), "--output-dir", str(tmp_path / "out")])
    assert code == 1 and "finetune: error: data.train: no training data dirs" in err


def test_a_finetuning_data_dir_that_does_not_exist_is_named(rel_corpus, tmp_path, capsys):
    cfg = finetune_dict(rel_corpus)
    cfg["data"]["train"] = ["few/nowhere"]
    path = write_yaml(tmp_path / "ft.yaml", yaml.safe_dump(cfg))
    code, err = run_finetune_cli(capsys, ["--config", str(path), "--output-dir", str(tmp_path / "out")])
    assert code == 1 and "finetune: error:" in err and "few/nowhere: not a directory" in err


def test_a_pretraining_config_without_any_data_source_is_named(rel_corpus, tmp_path, capsys):
    sets = tiny_overrides(rel_corpus, **{"data.speech": "{dirs: []}", "data.text": "{dirs: []}",
                                         "data.paired": "{dirs: []}"})
    code, err = run_pretrain_cli(capsys, tmp_path / "out", sets=sets)
    assert code == 1 and "data: no source has dirs" in err


def test_a_source_without_a_batch_budget_is_named():
    with pytest.raises(ConfigError, match=r"data\.speech: a source with dirs needs batch_sequences or a frame"):
        load_pretrain_config("tiny", ["data.speech={dirs: [speech/train]}"])


def test_not_yaml_is_named(tmp_path):
    cfg = write_yaml(tmp_path / "broken.yaml", "trainer: {max_steps: 5\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML"):
        load_pretrain_config(cfg)


def test_a_top_level_list_is_named(tmp_path):
    cfg = write_yaml(tmp_path / "list.yaml", "- trainer\n")
    with pytest.raises(ConfigError, match=r"list\.yaml: the top level must be a mapping, got list"):
        load_pretrain_config(cfg)


def test_a_malformed_override_is_named():
    with pytest.raises(ConfigError, match=r"override 'trainer\.max_steps': expected key\.path=value"):
        load_pretrain_config("tiny", ["trainer.max_steps"])


def test_an_unknown_config_name_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match=r"tiyn: no such config file, and not a shipped config \(shipped: .*tiny"):
        load_pretrain_config("tiyn")


def test_a_missing_vocabulary_file_is_named(rel_corpus, tmp_path, capsys):
    sets = tiny_overrides(rel_corpus, **{"data.vocab": "nope.txt"})
    code, err = run_pretrain_cli(capsys, tmp_path / "out", sets=sets)
    assert code == 1 and "data.vocab:" in err and "nope.txt not found" in err and "build_char_vocab" in err


def test_a_vocabulary_larger_than_the_embedding_is_named(rel_corpus, tmp_path, capsys):
    code, err = run_pretrain_cli(capsys, tmp_path / "out", sets=tiny_overrides(rel_corpus, **{"model.vocab_size": 64}))
    assert code == 1 and "model.vocab_size is 64 but" in err and "chars.txt has" in err


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_a_missing_or_corrupt_cmvn_file_is_named(rel_corpus, tmp_path, capsys, damage):
    path = tmp_path / "cmvn.npz"
    if damage == "corrupt":
        path.write_bytes(b"PK\x03\x04 not a zip archive")
    code, err = run_pretrain_cli(capsys, tmp_path / "out", sets=tiny_overrides(rel_corpus, **{"data.cmvn": str(path)}))
    assert code == 1 and "pretrain: error:" in err and "data.cmvn" in err and "cmvn.npz" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="asks for a GPU that must be missing")
def test_asking_for_a_gpu_that_does_not_exist_is_a_clear_config_error(rel_corpus, tmp_path, capsys):
    sets = tiny_overrides(rel_corpus, **{"trainer.device": "cuda"})
    code, err = run_pretrain_cli(capsys, tmp_path / "out", sets=sets)
    assert code == 1 and "pretrain: error:" in err and "trainer.device" in err
