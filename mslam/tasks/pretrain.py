"""The pre-training task: `PretrainConfig` (one YAML file) -> `PretrainModel`."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mslam.config import load_with_overrides, resolve_shipped
from mslam.data.pretrain_data import DataConfig
from mslam.model.encoder import ModelConfig
from mslam.model.pretrain import ObjectiveConfig, PretrainModel
from mslam.train.config import TrainerConfig
from mslam.train.monitor import MonitorConfig
from mslam.train.schedule import OptimConfig

CONF_DIR = Path(__file__).resolve().parent.parent / "conf" / "pretrain"


@dataclass
class PretrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    data: DataConfig = field(default_factory=DataConfig)        # read only by the trainer
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)   # collapse checks on held-out speech


def resolve_config(name: str | os.PathLike) -> Path:
    """A YAML path, or the name of a config shipped in mslam/conf/pretrain (`mslam_0.6b`)."""
    return resolve_shipped(name, CONF_DIR)


def load_pretrain_config(source: str | os.PathLike | dict, overrides: list[str] = ()) -> PretrainConfig:
    """A config from a YAML path / shipped name / dict, with `key.path=value` overrides (values in YAML)."""
    return load_with_overrides(source, PretrainConfig, CONF_DIR, overrides)


def build_pretrain_model(cfg: PretrainConfig | str | os.PathLike | dict,
                         device: torch.device | str | None = None) -> PretrainModel:
    """Build the model from a config (or a YAML path / dict). `device="meta"` allocates nothing."""
    if not isinstance(cfg, PretrainConfig):
        cfg = load_pretrain_config(cfg)
    if device is None:
        return PretrainModel(cfg.model, cfg.objective)
    with torch.device(device):
        return PretrainModel(cfg.model, cfg.objective)
