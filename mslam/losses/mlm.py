"""Cross-entropy on masked positions (masked prediction of code ids, span-masked characters, TLM)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """logits [N, C] at the masked positions, targets [N] -> (mean CE, accuracy).

    With no masked position the loss is a graph-connected 0 (no NaN from an empty mean).
    """
    if targets.numel() == 0:
        zero = logits.sum() * 0.0
        return zero, zero.detach()
    loss = F.cross_entropy(logits.float(), targets)
    acc = (logits.argmax(-1) == targets).float().mean()
    return loss, acc.detach()
