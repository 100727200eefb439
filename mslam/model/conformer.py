"""Conformer blocks (pre-LN, macaron FFNs) with padding masks.

Shapes: activations are [B, T, D]; `valid` is a bool [B, T] mask, True on real frames/tokens.
Nothing loops over time; attention goes through `F.scaled_dot_product_attention`.
Padding never leaks into real positions: attention masks padded keys, padded frames are zeroed
before the depthwise convolution, and the group norm takes its statistics over real frames only.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn


def lengths_to_valid(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """bool [B, max_len], True where position < length."""
    return torch.arange(max_len, device=lengths.device) < lengths[:, None]


def masked_mean(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """[B, T, D] averaged over the real positions of `valid` [B, T] -> [B, D] (zeros for an empty row)."""
    m = valid[..., None].to(x.dtype)
    return (x * m).sum(1) / m.sum(1).clamp(min=1)


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """F.dropout with a cheaper mask on CPU, where `bernoulli_` draws one 32-bit number per element
    serially and took a tenth of a training step: here four 16-bit integers come from each 64-bit draw,
    so p is rounded to a multiple of 1/65536 and the kept values are scaled by exactly 1 / (kept share).
    GPUs keep the fused kernel."""
    if not training or p == 0.0:
        return x
    dropped = round(p * 65536)
    if x.device.type != "cpu" or not 0 < dropped < 65536:
        return F.dropout(x, p, True)
    n = x.numel()
    bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-2 ** 63, 2 ** 63 - 1)
    keep = bits.view(torch.int16)[:n].view(x.shape) >= dropped - 32768
    return x * keep.to(x.dtype).mul_(65536 / (65536 - dropped))


def sinusoidal_positions(length: int, dim: int, device=None, dtype=None) -> torch.Tensor:
    """The Transformer's sin/cos table, [length, dim] (sin on even, cos on odd channels)."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device, dtype=torch.float32)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table if dtype is None else table.to(dtype)


class FeedForward(nn.Module):
    def __init__(self, d_model: int, ffn_dim: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.w1 = nn.Linear(d_model, ffn_dim)
        self.w2 = nn.Linear(ffn_dim, d_model)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.silu(self.w1(self.norm(x)))
        y = dropout(y, self.dropout, self.training)
        return dropout(self.w2(y), self.dropout, self.training)


class SelfAttention(nn.Module):
    def __init__(self, d_model: int, heads: int, dropout: float, attn_dropout: float):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model {d_model} is not divisible by heads {heads}")
        self.heads = heads
        self.norm = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = dropout
        self.attn_dropout = attn_dropout

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        b, t, d = x.shape
        qkv = self.qkv(self.norm(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                           dropout_p=self.attn_dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(b, t, d)
        return dropout(self.out(y), self.dropout, self.training)


class MaskedGroupNorm(nn.Module):
    """GroupNorm over (channels in group, time) that ignores padded frames. x: [B, C, T]."""

    def __init__(self, groups: int, channels: int, eps: float = 1e-5):
        super().__init__()
        if channels % groups:
            raise ValueError(f"conv_norm_groups {groups} does not divide d_model {channels}")
        self.groups, self.eps = groups, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        if valid is None:
            return F.group_norm(x, self.groups, self.weight, self.bias, self.eps)
        b, c, t = x.shape
        g = x.view(b, self.groups, c // self.groups, t)
        m = valid[:, None, None, :].to(x.dtype)
        count = (m.sum(-1, keepdim=True) * (c // self.groups)).clamp(min=1)
        mean = (g * m).sum((2, 3), keepdim=True) / count
        centred = g - mean
        var = (centred.square() * m).sum((2, 3), keepdim=True) / count
        y = (centred * torch.rsqrt(var + self.eps)).view(b, c, t)
        return y * self.weight[:, None] + self.bias[:, None]


class ConvModule(nn.Module):
    """pointwise conv + GLU -> depthwise conv -> norm -> Swish -> pointwise conv."""

    def __init__(self, d_model: int, kernel: int, norm: str, norm_groups: int, dropout: float):
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"conv_kernel must be odd, got {kernel}")
        self.norm_in = nn.LayerNorm(d_model)
        self.pw1 = nn.Linear(d_model, 2 * d_model)  # a kernel-1 conv over [B, T, D]
        self.dw = nn.Conv1d(d_model, d_model, kernel, padding=kernel // 2, groups=d_model)
        self.norm_kind = norm
        if norm == "group":
            self.norm = MaskedGroupNorm(norm_groups, d_model)
        elif norm == "batch":  # batch statistics include padded frames in training (eval is exact)
            self.norm = nn.BatchNorm1d(d_model)
        elif norm == "layer":
            self.norm = nn.LayerNorm(d_model)
        else:
            raise ValueError(f"unknown conv_norm {norm!r}")
        self.pw2 = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        y = F.glu(self.pw1(self.norm_in(x)), dim=-1)
        if valid is not None:
            y = y.masked_fill(~valid[..., None], 0.0)
        y = self.dw(y.transpose(1, 2))  # [B, D, T]
        if self.norm_kind == "group":
            y = self.norm(y, valid)
        elif self.norm_kind == "batch":
            y = self.norm(y)
        y = y.transpose(1, 2)
        if self.norm_kind == "layer":
            y = self.norm(y)
        y = self.pw2(F.silu(y))
        return dropout(y, self.dropout, self.training)


class ConformerBlock(nn.Module):
    def __init__(self, d_model: int, ffn_dim: int, heads: int, conv_kernel: int, conv_norm: str = "group",
                 conv_norm_groups: int = 1, dropout: float = 0.1, attn_dropout: float = 0.0):
        super().__init__()
        self.ff1 = FeedForward(d_model, ffn_dim, dropout)
        self.attn = SelfAttention(d_model, heads, dropout, attn_dropout)
        self.conv = ConvModule(d_model, conv_kernel, conv_norm, conv_norm_groups, dropout)
        self.ff2 = FeedForward(d_model, ffn_dim, dropout)
        self.norm_out = nn.LayerNorm(d_model)

    def forward(self, x, valid: torch.Tensor | None, attn_mask: torch.Tensor | None) -> torch.Tensor:
        x = x + 0.5 * self.ff1(x)
        x = x + self.attn(x, attn_mask)
        x = x + self.conv(x, valid)
        x = x + 0.5 * self.ff2(x)
        return self.norm_out(x)


class ConformerStack(nn.Module):
    """`layers` Conformer blocks with stochastic depth (whole-layer drop with prob `layer_drop`)."""

    def __init__(self, layers: int, layer_drop: float = 0.0, **block_kwargs):
        super().__init__()
        self.layers = nn.ModuleList(ConformerBlock(**block_kwargs) for _ in range(layers))
        self.layer_drop = layer_drop
        # Set by the trainer: recompute each block's activations in backward (less memory, ~1/3 more compute).
        self.checkpoint_activations = False

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, collect: list | None = None) -> torch.Tensor:
        """x [B, T, D], lengths [B] -> [B, T, D] with padded positions set to zero. `collect`, if given,
        receives each layer's output (for probes; padded positions may hold garbage)."""
        b, t, _ = x.shape
        valid = lengths_to_valid(lengths, t)
        # Masks always (asking the lengths whether there is padding would make the host wait for the device).
        conv_valid = valid
        # An all-padding row (length 0) would give softmax over nothing = NaN: let it see all keys.
        attn_mask = (valid | (lengths == 0)[:, None])[:, None, None, :]
        if len(self.layers) and self.training and self.layer_drop > 0:
            keep = (torch.rand(len(self.layers)) >= self.layer_drop).tolist()
        else:
            keep = [True] * len(self.layers)
        for layer, k in zip(self.layers, keep):
            if k and self.checkpoint_activations and self.training:
                x = torch.utils.checkpoint.checkpoint(layer, x, conv_valid, attn_mask, use_reentrant=False)
            elif k:
                x = layer(x, conv_valid, attn_mask)
            if collect is not None:
                collect.append(x)
        return x.masked_fill(~valid[..., None], 0.0)
