"""Front ends: log-mel -> 4x (or 2x) subsampled d_model frames; character ids -> d_model embeddings."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mslam.model.conformer import sinusoidal_positions


def conv_subsampled_lengths(lengths: torch.Tensor, subsampling: int = 4) -> torch.Tensor:
    """Frames out of Conv2d(kernel 3, stride 2) then Conv2d(kernel 3, stride subsampling // 2), no padding:
    each maps L -> (L - 3) // stride + 1."""
    first = torch.div(lengths - 3, 2, rounding_mode="floor") + 1
    return (torch.div(first - 3, subsampling // 2, rounding_mode="floor") + 1).clamp(min=0)


class SpeechFrontEnd(nn.Module):
    """2 x (Conv2d k3 + ReLU) over (time, mel), then Linear to d_model and LayerNorm. Both convolutions
    stride 2 over time (4x, 40 ms frames; the paper's); with subsampling 2 the second strides 1 in time
    (20 ms frames: CTC needs a frame per character, and dense text has more characters than 40 ms frames).

    No padding in time, so an output frame inside the output length sees only real input frames.
    `channels` sets the front end's cost (ESPnet uses d_model channels; that is half the encoder's
    time at small sizes), so it is a config key of its own.
    """

    MIN_FRAMES = 7  # the shortest input that yields one output frame (at either subsampling)

    def __init__(self, feat_dim: int, channels: int, d_model: int, subsampling: int = 4):
        super().__init__()
        if subsampling not in (2, 4):
            raise ValueError(f"frontend subsampling must be 2 or 4, got {subsampling}")
        self.subsampling = subsampling
        self.conv1 = nn.Conv2d(1, channels, 3, stride=2)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=(subsampling // 2, 2))
        freq = ((feat_dim - 1) // 2 - 1) // 2
        self.proj = nn.Linear(channels * freq, d_model)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feats [B, T, F], lengths [B] -> ([B, T', D], lengths')."""
        if feats.shape[1] < self.MIN_FRAMES:
            feats = F.pad(feats, (0, 0, 0, self.MIN_FRAMES - feats.shape[1]))
        # In place: the first output is the front end's largest tensor (80 MB for 8 x 10 s at 128 channels)
        x = F.relu(self.conv1(feats.unsqueeze(1)), inplace=True)
        x = F.relu(self.conv2(x), inplace=True)  # [B, C, T', F']
        b, c, t, f = x.shape
        x = self.norm(self.proj(x.transpose(1, 2).reshape(b, t, c * f)))
        return x, conv_subsampled_lengths(lengths, self.subsampling)


class TextFrontEnd(nn.Module):
    """Character embedding + sinusoidal positions + LayerNorm (the SLAM text encoder)."""

    def __init__(self, vocab_size: int, d_model: int, pad_id: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        x = x + sinusoidal_positions(tokens.shape[1], x.shape[-1], x.device, x.dtype)
        return self.norm(x)
