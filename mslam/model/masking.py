"""The one place where inputs are masked for pre-training: speech frame spans and character spans.

Both maskers are vectorised over the batch and take an optional `torch.Generator` (tests use it for
reproducible draws; training uses the global RNG, which the trainer's checkpoints carry).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from mslam.model.conformer import lengths_to_valid


def _rand(shape, device, generator):
    return torch.rand(shape, device=device, generator=generator)


@dataclass
class SpeechMaskConfig:
    prob: float = 0.065          # paper (w2v-BERT): probability that a frame starts a span
    span: int = 10               # paper (w2v-BERT): frames per span; spans may overlap
    replace: Literal["noise", "learned"] = "noise"  # "noise": N(0, noise_std^2) vectors; "learned": one trained vector
    noise_std: float = 0.1
    min_spans: int = 1           # each non-empty utterance gets at least this many spans

    def __post_init__(self):
        if self.replace not in ("noise", "learned"):
            raise ValueError(f"replace must be 'noise' or 'learned', got {self.replace!r}")
        if not 0.0 <= self.prob <= 1.0 or self.span < 1:
            raise ValueError(f"need 0 <= prob <= 1 and span >= 1, got prob={self.prob}, span={self.span}")


class SpeechSpanMasker(nn.Module):
    """w2v-BERT masking: every real frame starts a span of `span` frames with probability `prob`.

    The expected masked fraction away from the edges is 1 - (1 - prob)^span (0.49 for 0.065 x 10).
    Spans are cut at the end of the utterance. `replace()` overwrites masked frames.
    """

    def __init__(self, cfg: SpeechMaskConfig, d_model: int, embedding: nn.Parameter | None = None):
        super().__init__()
        self.cfg = cfg
        self.embedding = None
        if cfg.replace == "learned":  # one vector; another masker may share it (`embedding`)
            self.embedding = embedding if embedding is not None else nn.Parameter(torch.empty(d_model).normal_(0.0, 0.1))

    def sample(self, lengths: torch.Tensor, max_len: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """bool [B, max_len]: True on masked real frames."""
        valid = lengths_to_valid(lengths, max_len)
        b = lengths.shape[0]
        starts = (_rand((b, max_len), lengths.device, generator) < self.cfg.prob) & valid
        if self.cfg.min_spans > 0:
            short = (starts.sum(1) < self.cfg.min_spans) & (lengths > 0)
            for _ in range(self.cfg.min_spans):
                pos = (_rand((b,), lengths.device, generator) * lengths).long().clamp(max=max(max_len - 1, 0))
                starts[torch.arange(b, device=lengths.device), pos] |= short
        c = torch.cumsum(starts.to(torch.int32), dim=1)
        before = torch.nn.functional.pad(c, (self.cfg.span, 0))[:, :max_len]
        return ((c - before) > 0) & valid

    def replace(self, x: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x [B, T, D] with masked frames replaced (noise or the learned vector)."""
        if self.embedding is not None:
            fill = self.embedding.to(x.dtype).expand_as(x)
        else:
            fill = torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=generator) * self.cfg.noise_std
        return torch.where(mask[..., None], fill, x)


@dataclass
class TextMaskConfig:
    ratio: float = 0.15          # fraction of characters masked (paper: unknown for mSLAM; SLAM/BERT 15%)
    span: int = 20               # paper: span length 20 characters
    mask_frac: float = 0.8       # of masked spans: replaced by <mask> (SpanBERT 80/10/10)
    random_frac: float = 0.1     # ... by random characters; the rest stay unchanged

    def __post_init__(self):
        if not 0.0 < self.ratio <= 1.0 or self.span < 1:
            raise ValueError(f"need 0 < ratio <= 1 and span >= 1, got ratio={self.ratio}, span={self.span}")
        if self.mask_frac < 0 or self.random_frac < 0 or self.mask_frac + self.random_frac > 1.0:
            raise ValueError("mask_frac and random_frac must be >= 0 with a sum <= 1")


class TextSpanMasker:
    """SpanBERT-style character masking with fixed-length spans.

    Each sequence of length n gets round(ratio * n) (at least 1) masked characters, in spans of
    `span` characters (one shorter span takes the remainder) placed uniformly at random without
    overlap; two spans may touch. Each span as a whole is replaced by <mask> (mask_frac), by random
    characters (random_frac), or kept (the rest), as SpanBERT does.
    """

    def __init__(self, cfg: TextMaskConfig, mask_id: int, random_low: int, random_high: int):
        self.cfg, self.mask_id = cfg, mask_id
        self.random_low, self.random_high = random_low, random_high

    def __call__(self, tokens: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator | None = None):
        """tokens [B, L] -> (masked tokens [B, L], bool mask [B, L] of the positions to predict)."""
        b, max_len = tokens.shape
        dev = tokens.device
        span = self.cfg.span
        n_mask = torch.where(lengths > 0, (lengths.float() * self.cfg.ratio).round().long().clamp(min=1), 0)
        n_mask = torch.minimum(n_mask, lengths)
        n_spans = torch.div(n_mask + span - 1, span, rounding_mode="floor")  # [B]
        # span slots: as many as the longest possible row needs (a bound from the shape, not the data)
        # (round(x) <= floor(x) + 1 whatever the float rounding, and no row masks more than max_len)
        k = max(-(-min(max_len, int(max_len * self.cfg.ratio) + 1) // span), 1)
        col = torch.arange(k, device=dev)[None, :]
        span_ok = col < n_spans[:, None]
        # span lengths: all `span` except one (at a random slot) that takes the remainder
        last = n_mask - (n_spans - 1).clamp(min=0) * span
        short_slot = (_rand((b,), dev, generator) * n_spans).long()
        lens = torch.where(col == short_slot[:, None], last[:, None], torch.full_like(col, span))
        lens = torch.where(span_ok, lens, 0)
        # gaps: n_spans sorted uniform draws from [0, free]; start_i = gap_i + sum(lens before i)
        free = (lengths - n_mask)[:, None]
        gaps = (_rand((b, k), dev, generator) * (free + 1)).long().clamp(max=free)
        gaps = torch.where(span_ok, gaps, free).sort(dim=1).values
        starts = gaps + torch.cumsum(lens, 1) - lens
        # paint spans with a difference array; span id of a position = starts at or before it - 1
        delta = torch.zeros(b, max_len + 1, dtype=torch.long, device=dev)
        ones = span_ok.long()
        delta.scatter_add_(1, starts.clamp(max=max_len), ones)
        delta.scatter_add_(1, (starts + lens).clamp(max=max_len), -ones)
        mask = torch.cumsum(delta, 1)[:, :max_len] > 0
        start_mark = torch.zeros(b, max_len + 1, dtype=torch.long, device=dev)
        start_mark.scatter_add_(1, starts.clamp(max=max_len), ones)
        span_id = (torch.cumsum(start_mark, 1)[:, :max_len] - 1).clamp(min=0, max=k - 1)
        # per-span replacement choice
        u = _rand((b, k), dev, generator).gather(1, span_id)
        to_mask = mask & (u < self.cfg.mask_frac)
        to_random = mask & (u >= self.cfg.mask_frac) & (u < self.cfg.mask_frac + self.cfg.random_frac)
        rnd = torch.randint(self.random_low, self.random_high, (b, max_len), device=dev, generator=generator)
        out = torch.where(to_mask, torch.full_like(tokens, self.mask_id), tokens)
        out = torch.where(to_random, rnd, out)
        return out, mask
