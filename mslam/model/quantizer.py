"""Gumbel-softmax vector quantiser (wav2vec 2.0 / w2v-BERT) over the unmasked front-end features."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

from mslam.model.conformer import masked_mean


@dataclass
class QuantizerConfig:
    groups: int = 1              # unknown in the papers; 1 codebook (fairseq2's w2v-BERT)
    codes: int = 1024            # paper (w2v-BERT): codebook size 1024
    code_dim: Optional[int] = None  # null = d_model (paper, w2v-BERT: code dim 1024 = d_model)
    temp_start: float = 2.0      # Gumbel temperature schedule: max(temp_end, temp_start * temp_decay^step)
    temp_end: float = 0.1
    temp_decay: float = 0.999995
    # Where the masked-prediction ids come from. gumbel: the argmax of this quantiser (w2v-BERT, the
    # paper); random_projection: a frozen random projection of the stacked input fbank frames to the
    # nearest of `codes` frozen random vectors (BEST-RQ), targets that do not move while the model learns.
    mlm_targets: Literal["gumbel", "random_projection"] = "gumbel"
    # What the Gumbel quantiser's logits see. none: the front end's output as it is; utterance: each channel
    # standardised over the utterance's frames, so that what all frames share cannot pick one code for all.
    input_norm: Literal["none", "utterance"] = "none"
    # Standard deviation of the logit projection's weights; null: in_dim^-0.5 (logits of about unit
    # variance). wav2vec 2.0 draws them with 1.0 (logits ~sqrt(in_dim)): a Gumbel sample is then nearly
    # always the argmax; with unit-variance logits a sample matched the argmax for 5% of frames at init.
    init_std: Optional[float] = None

    def __post_init__(self):
        if self.code_dim is not None and self.code_dim % self.groups:
            raise ValueError(f"code_dim {self.code_dim} is not divisible by groups {self.groups}")

    def temperature(self, step: int) -> float:
        return max(self.temp_end, self.temp_start * self.temp_decay ** step)


class GumbelVectorQuantizer(nn.Module):
    def __init__(self, in_dim: int, groups: int, codes: int, code_dim: int, input_norm: str = "none",
                 init_std: float | None = None):
        super().__init__()
        if code_dim % groups:
            raise ValueError(f"code_dim {code_dim} is not divisible by groups {groups}")
        self.groups, self.codes, self.code_dim, self.input_norm = groups, codes, code_dim, input_norm
        self.to_logits = nn.Linear(in_dim, groups * codes)
        self.codebook = nn.Parameter(torch.empty(groups, codes, code_dim // groups))
        nn.init.normal_(self.codebook)
        nn.init.normal_(self.to_logits.weight, std=init_std if init_std is not None else in_dim ** -0.5)
        nn.init.zeros_(self.to_logits.bias)

    def logits(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """[B, T, in_dim] (real frames `valid` [B, T]) -> float32 logits [B, T, G, V]."""
        if self.input_norm == "utterance":
            if valid is None:
                valid = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
            mean = masked_mean(x, valid)[:, None]
            # (clamped: an empty row's variance is 0, whose square root has an infinite gradient)
            std = masked_mean((x - mean) ** 2, valid)[:, None].clamp(min=1e-12).sqrt()
            x = (x - mean) / (std + 1e-5)
        return self.to_logits(x).float().unflatten(-1, (self.groups, self.codes))

    @staticmethod
    def ids(logits: torch.Tensor) -> torch.Tensor:
        """Hard code ids [..., G] (the masked-prediction targets)."""
        return logits.argmax(-1)

    def quantize(self, logits: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(code vectors [..., code_dim], the codes chosen [..., G]): a straight-through Gumbel-softmax
        sample in training, the argmax in eval."""
        if self.training:
            onehot = F.gumbel_softmax(logits, tau=temperature, hard=True, dim=-1)
        else:
            onehot = F.one_hot(logits.argmax(-1), self.codes).to(logits.dtype)
        q = torch.einsum("...gv,gvd->...gd", onehot.to(self.codebook.dtype), self.codebook)
        return q.flatten(-2), onehot.argmax(-1)


class RandomProjectionQuantizer(nn.Module):
    """Frozen targets for masked prediction (BEST-RQ): the fbank frames under each encoder frame, stacked,
    standardised, projected by a fixed random matrix and assigned to the nearest (cosine) of `codes` fixed
    random unit vectors. Nothing here is trained; the buffers are saved with the model."""

    def __init__(self, feat_dim: int, stride: int, groups: int, codes: int, dim: int = 16, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.stride, self.groups, self.codes = stride, groups, codes
        self.register_buffer("projection", torch.randn(groups, feat_dim * stride, dim, generator=g)
                             * (feat_dim * stride) ** -0.5)
        self.register_buffer("codebook", F.normalize(torch.randn(groups, codes, dim, generator=g), dim=-1))

    @torch.no_grad()
    def ids(self, feats: torch.Tensor, frames: int) -> torch.Tensor:
        """feats [B, T_in, F] -> ids [B, frames, G]: encoder frame t takes input frames t*stride ... +stride-1."""
        b, t_in, f = feats.shape
        need = frames * self.stride
        if t_in < need:
            feats = F.pad(feats, (0, 0, 0, need - t_in))
        x = feats[:, :need].float().reshape(b, frames, self.stride * f)
        x = (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + 1e-5)
        z = F.normalize(torch.einsum("btk,gkd->btgd", x, self.projection), dim=-1)
        return torch.einsum("btgd,gvd->btgv", z, self.codebook).argmax(-1)
