"""The typed config loader: unknown keys, wrong types, missing keys, nesting, Literal, Optional."""
from dataclasses import dataclass, field
from typing import Literal, Optional

import pytest

from mslam.config import ConfigError, load_config
from mslam.tasks.pretrain import CONF_DIR, PretrainConfig, load_pretrain_config


@dataclass
class Inner:
    size: int
    rate: float = 0.5
    kind: Literal["a", "b"] = "a"
    name: Optional[str] = None
    dims: list[int] = field(default_factory=list)


@dataclass
class Outer:
    inner: Inner
    flag: bool = False


def test_valid_nested_config_with_conversions():
    cfg = load_config({"inner": {"size": 3, "rate": 1, "kind": "b", "dims": [1, 2]}, "flag": True}, Outer)
    assert cfg.inner.size == 3 and cfg.inner.rate == 1.0 and isinstance(cfg.inner.rate, float)
    assert cfg.inner.kind == "b" and cfg.inner.dims == [1, 2] and cfg.inner.name is None and cfg.flag
    assert load_config({"inner": {"size": 1, "rate": "6e-4"}}, Outer).inner.rate == 6e-4  # YAML 1.1 string


def test_unknown_key_names_path_suggestion_and_valid_keys(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  encoder:\n    d_modle: 128\n")
    with pytest.raises(ConfigError) as e:
        load_config(path, PretrainConfig)
    msg = str(e.value)
    assert "bad.yaml" in msg and "model.encoder.d_modle" in msg and "did you mean 'd_model'" in msg
    assert "ffn_dim" in msg and "speech_layers" in msg  # lists the valid keys


def test_wrong_type_names_expected_type_and_value():
    with pytest.raises(ConfigError, match=r"inner\.size: expected int, got str 'big'"):
        load_config({"inner": {"size": "big"}}, Outer)
    with pytest.raises(ConfigError, match=r"inner\.size: expected int, got float 1\.5"):
        load_config({"inner": {"size": 1.5}}, Outer)
    with pytest.raises(ConfigError, match=r"flag: expected bool"):
        load_config({"inner": {"size": 1}, "flag": "yes"}, Outer)
    with pytest.raises(ConfigError, match=r"inner\.kind: expected one of 'a', 'b', got str 'c'"):
        load_config({"inner": {"size": 1, "kind": "c"}}, Outer)
    with pytest.raises(ConfigError, match=r"inner\.dims\[1\]: expected int"):
        load_config({"inner": {"size": 1, "dims": [1, "x"]}}, Outer)
    with pytest.raises(ConfigError, match=r"inner: expected a mapping"):
        load_config({"inner": 3}, Outer)


def test_missing_required_key_is_named():
    with pytest.raises(ConfigError, match=r"inner\.size: missing required key 'size'"):
        load_config({"inner": {}}, Outer)


def test_semantic_checks_name_the_section():
    with pytest.raises(ConfigError, match=r"model\.encoder: d_model 100 is not divisible by heads 8"):
        load_config({"model": {"encoder": {"d_model": 100, "heads": 8}}}, PretrainConfig)


@pytest.mark.parametrize("name", ["mslam_0.6b", "mslam_2b", "mini", "tiny"])
def test_shipped_configs_load(name):
    assert (CONF_DIR / f"{name}.yaml").exists()
    cfg = load_pretrain_config(name)
    assert cfg.objective.variant == "mslam-ctc"


def test_base_merges_a_recipe_config_over_a_shipped_one(tmp_path):
    (tmp_path / "scale.yaml").write_text("base: mslam_0.6b\ntrainer: {grad_accum: 4}\ndata: {speech: {batch_sequences: 64}}\n")
    (tmp_path / "run.yaml").write_text("base: scale.yaml\noptim: {peak_lr: 1.0e-4}\n")
    cfg = load_pretrain_config(tmp_path / "run.yaml", ["trainer.max_steps=7"])
    shipped = load_pretrain_config("mslam_0.6b")
    assert cfg.trainer.grad_accum == 4 and cfg.trainer.max_steps == 7 and cfg.optim.peak_lr == 1.0e-4
    assert cfg.data.speech.batch_sequences == 64
    # what the files do not say comes from the shipped config, section by section
    assert cfg.data.speech.max_frames == shipped.data.speech.max_frames and cfg.model == shipped.model
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match="includes itself"):
        load_pretrain_config(tmp_path / "loop.yaml")
    (tmp_path / "bad.yaml").write_text("base: mslam_0.6b\ntrainer: {max_stepz: 3}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*max_stepz"):
        load_pretrain_config(tmp_path / "bad.yaml")
