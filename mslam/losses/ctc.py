"""CTC with character targets, computed in float32 outside autocast."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def ctc_loss(logits: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor,
             blank: int = 0) -> torch.Tensor:
    """logits [B, T, V], lengths [B], targets [B, L] (padding ignored), target_lengths [B].

    Per utterance -log p(y|x) divided by its target length, averaged over the batch (torch's
    reduction="mean"). An utterance whose input is too short for its target has infinite loss, which
    zero_infinity turns into 0 with no gradient instead of NaN.
    """
    with torch.autocast(device_type=logits.device.type, enabled=False):
        log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # [T, B, V]
        return F.ctc_loss(log_probs, targets, lengths, target_lengths, blank=blank,
                          reduction="mean", zero_infinity=True)
