"""Global mean/variance (CMVN) statistics of features: count, sum and sum of squares per dimension,
merged over jobs and saved as cmvn.npz.

Kept free of torch at import time, so that the drivers that only merge and move statistics (the
parallel feature dump's merge step) start in a fraction of a second.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from mslam.config import ConfigError


class CMVNStats:
    """Global mean/variance statistics: count, sum and sum of squares per feature dimension."""

    def __init__(self, dim: int):
        self.count = 0
        self.sum = np.zeros(dim, dtype=np.float64)
        self.sum_square = np.zeros(dim, dtype=np.float64)

    def add(self, feats) -> None:
        """Add (frames, dim) features: a numpy array or a torch tensor."""
        feats = np.asarray(feats, dtype=np.float64)
        self.count += feats.shape[0]
        self.sum += feats.sum(axis=0)
        self.sum_square += np.square(feats).sum(axis=0)

    def merge(self, other: "CMVNStats") -> None:
        self.count += other.count
        self.sum += other.sum
        self.sum_square += other.sum_square

    @property
    def mean(self) -> np.ndarray:
        return self.sum / max(self.count, 1)

    @property
    def std(self) -> np.ndarray:
        var = self.sum_square / max(self.count, 1) - np.square(self.mean)
        return np.sqrt(np.maximum(var, 1e-10))

    def save(self, path: str | Path) -> None:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, count=self.count, sum=self.sum, sum_square=self.sum_square)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> "CMVNStats":
        try:
            return cls._load(path)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:  # missing, or not our npz
            raise ConfigError(f"data.cmvn: {path} is not readable global CMVN statistics ({e.__class__.__name__}: "
                              f"{e}); recompute them (python -m mslam.bin.compute_fbank writes cmvn.npz)") from None

    @classmethod
    def _load(cls, path: str | Path) -> "CMVNStats":
        with np.load(path) as data:
            stats = cls(data["sum"].shape[0])
            stats.count = int(data["count"])
            stats.sum = data["sum"].astype(np.float64)
            stats.sum_square = data["sum_square"].astype(np.float64)
        return stats

    def normalize(self, feats: "torch.Tensor") -> "torch.Tensor":
        import torch  # the caller's features are tensors already: no import cost here
        mean = torch.as_tensor(self.mean, dtype=feats.dtype, device=feats.device)
        std = torch.as_tensor(self.std, dtype=feats.dtype, device=feats.device)
        return (feats - mean) / std
