"""The pre-training task: `PretrainConfig` (one YAML file) -> `PretrainModel`."""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from mslam.config import ConfigError, load_config
from mslam.data.pretrain_data import DataConfig
from mslam.model.encoder import ModelConfig
from mslam.model.pretrain import ObjectiveConfig, PretrainModel
from mslam.train.config import TrainerConfig
from mslam.train.schedule import OptimConfig

CONF_DIR = Path(__file__).resolve().parent.parent / "conf" / "pretrain"


@dataclass
class PretrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    data: DataConfig = field(default_factory=DataConfig)        # read only by the trainer
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


def resolve_config(name: str | os.PathLike) -> Path:
    """A YAML path, or the name of a config shipped in mslam/conf/pretrain (`mslam_0.6b`)."""
    path = Path(name)
    if path.exists():
        return path
    shipped = CONF_DIR / (path.name if path.suffix == ".yaml" else f"{path.name}.yaml")
    if shipped.exists():
        return shipped
    known = ", ".join(sorted(p.stem for p in CONF_DIR.glob("*.yaml")))
    raise ConfigError(f"{name}: no such config file, and not a shipped config (shipped: {known})")


def load_pretrain_config(source: str | os.PathLike | dict, overrides: list[str] = ()) -> PretrainConfig:
    """A config from a YAML path / shipped name / dict, with `key.path=value` overrides (values in YAML)."""
    if isinstance(source, dict):
        return load_config(apply_overrides(source, overrides), PretrainConfig)
    path = resolve_config(source)
    cfg = load_config(path, PretrainConfig)  # errors name the file
    if not overrides:
        return cfg
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    return load_config(apply_overrides(data, overrides), PretrainConfig)


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected key.path=value (e.g. trainer.max_steps=100)")
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: '{p}' is not a section")
        node[leaf] = yaml.safe_load(value)
    return data


def build_pretrain_model(cfg: PretrainConfig | str | os.PathLike | dict,
                         device: torch.device | str | None = None) -> PretrainModel:
    """Build the model from a config (or a YAML path / dict). `device="meta"` allocates nothing."""
    if not isinstance(cfg, PretrainConfig):
        cfg = load_pretrain_config(cfg)
    if device is None:
        return PretrainModel(cfg.model, cfg.objective)
    with torch.device(device):
        return PretrainModel(cfg.model, cfg.objective)
