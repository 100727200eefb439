"""The pre-training task: `PretrainConfig` (one YAML file) -> `PretrainModel`."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mslam.config import ConfigError, load_config
from mslam.model.encoder import ModelConfig
from mslam.model.pretrain import ObjectiveConfig, PretrainModel

CONF_DIR = Path(__file__).resolve().parent.parent / "conf" / "pretrain"


@dataclass
class PretrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)


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


def load_pretrain_config(source: str | os.PathLike | dict) -> PretrainConfig:
    if isinstance(source, dict):
        return load_config(source, PretrainConfig)
    return load_config(resolve_config(source), PretrainConfig)


def build_pretrain_model(cfg: PretrainConfig | str | os.PathLike | dict,
                         device: torch.device | str | None = None) -> PretrainModel:
    """Build the model from a config (or a YAML path / dict). `device="meta"` allocates nothing."""
    if not isinstance(cfg, PretrainConfig):
        cfg = load_pretrain_config(cfg)
    if device is None:
        return PretrainModel(cfg.model, cfg.objective)
    with torch.device(device):
        return PretrainModel(cfg.model, cfg.objective)
