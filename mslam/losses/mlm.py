"""Cross-entropy on masked positions (masked prediction of code ids, span-masked characters, TLM)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor,
                         mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy and accuracy over the masked positions -> (loss, accuracy).

    Either logits [N, C] and targets [N] at the masked positions only, or (`mask` given) logits
    [..., C], targets [...] and a bool `mask` [...] over all positions: the same mean over the True
    positions, without selecting them (a selection has a data-dependent size, which costs the host a
    wait for the device). With no masked position the loss is a graph-connected 0 (no NaN).
    """
    if mask is None:
        mask = torch.ones(targets.shape, dtype=torch.bool, device=targets.device)
    logits, targets, mask = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), mask.reshape(-1)
    weight = mask.float()
    count = weight.sum().clamp(min=1.0)
    ce = F.cross_entropy(logits.float(), targets, reduction="none")
    loss = (torch.where(mask, ce, 0.0)).sum() / count
    acc = ((logits.argmax(-1) == targets).float() * weight).sum() / count
    return loss, acc.detach()
