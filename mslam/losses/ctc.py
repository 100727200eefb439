"""CTC with character targets, computed in float32 outside autocast.

`F.ctc_loss` copies the lengths to the host (on a GPU: a wait for the device in every step); with
`lengths_on_device` the forward and backward algorithms written here in torch ops over the batch (a
loop over time each) keep them on the device. Pre-training uses them on accelerators; on a CPU, where
nothing waits, torch's one-kernel CTC is faster. `F.ctc_loss` is their reference in the
tests.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# A finite stand-in for log(0): sums of it stay far below any real log-probability, and its
# gradients stay finite where an -inf would give NaN (inf - inf) in backward.
LOG_ZERO = -1.0e30
IMPOSSIBLE = -1.0e29  # a path log-probability below this had no valid path


def ctc_loss(logits: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor,
             blank: int = 0, lengths_on_device: bool | None = False) -> torch.Tensor:
    """logits [B, T, V], lengths [B], targets [B, L] (padding ignored), target_lengths [B].

    Per utterance -log p(y|x) divided by its target length (at least 1), averaged over the batch
    (torch's reduction="mean"). An utterance whose input is too short for its target has infinite
    loss, which zero_infinity turns into 0 with no gradient instead of NaN.

    lengths_on_device: the forward algorithm below instead of `F.ctc_loss` (same values to float
    tolerance). None: on an accelerator only. The average leaves out rows with no input frame
    (padding rows that static batch shapes add).
    """
    if lengths_on_device is None:
        lengths_on_device = logits.device.type != "cpu"
    with torch.autocast(device_type=logits.device.type, enabled=False):
        log_probs = logits.float().log_softmax(-1)  # [B, T, V]
        if lengths_on_device:
            nll = ctc_nll(log_probs, lengths, targets, target_lengths, blank)
            nll = torch.where(nll > -IMPOSSIBLE, 0.0, nll)
        else:
            nll = F.ctc_loss(log_probs.transpose(0, 1), targets, lengths, target_lengths, blank=blank,
                             reduction="none", zero_infinity=True)
        per_row = nll / target_lengths.clamp(min=1).float()
        rows = (lengths > 0).float()
        return (per_row * rows).sum() / rows.sum().clamp(min=1.0)


def ctc_nll(log_probs: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor,
            target_lengths: torch.Tensor, blank: int = 0) -> torch.Tensor:
    """-log p(targets | input) per utterance [B] by the CTC forward algorithm in log space; log_probs
    [B, T, V] (normalised). Impossible alignments give about -LOG_ZERO (see IMPOSSIBLE)."""
    b = log_probs.shape[0]
    lmax = targets.shape[1]
    s_len = 2 * lmax + 1
    # the extended label sequence: blank, y1, blank, y2, ..., blank
    ext = torch.full((b, s_len), blank, dtype=torch.long, device=log_probs.device)
    if lmax:
        ext[:, 1::2] = targets.clamp(min=0)
    # a label may be reached from two back when it differs from the label two back (and is not blank)
    skip = torch.zeros(b, s_len, dtype=torch.bool, device=log_probs.device)
    if lmax > 1:
        skip[:, 3::2] = ext[:, 3::2] != ext[:, 1:-2:2]
    return _ctc_apply(log_probs, ext, skip, lengths, target_lengths)


_eager_apply = None


def _ctc_apply(log_probs, ext, skip, lengths, target_lengths):
    """Eager inside a compiled model: compiling would unroll its loops over time. Wrapped on first use,
    as torch.compiler.disable imports the compiler (1.5 s for every program that imports mslam)."""
    global _eager_apply
    if _eager_apply is None:
        _eager_apply = torch.compiler.disable(_CTCForwardBackward.apply)
    return _eager_apply(log_probs, ext, skip, lengths, target_lengths)


class _CTCForwardBackward(torch.autograd.Function):
    """alpha (forward) and beta (backward) recursions, one loop over time each; the gradient of
    -log p with respect to the log-probabilities is -sum over states s of label k of
    exp(alpha_t(s) + beta_t(s) - emit_t(s) - log p)."""

    @staticmethod
    def forward(ctx, log_probs, ext, skip, lengths, target_lengths):
        b, t_max, _ = log_probs.shape
        s_len = ext.shape[1]
        emit = torch.gather(log_probs, 2, ext[:, None, :].expand(b, t_max, s_len))  # [B, T, S]
        skip_fill = torch.where(skip, 0.0, LOG_ZERO)
        live = torch.arange(t_max, device=ext.device)[None, :] < lengths[:, None]  # [B, T]
        # alpha_t in columns 2.. of a buffer whose first two columns stay log(0) (the shifts read them)
        alpha = log_probs.new_full((t_max, b, s_len + 2), LOG_ZERO)
        first = torch.arange(s_len, device=ext.device)[None, :] < 2
        alpha[0, :, 2:] = torch.where(first, emit[:, 0], LOG_ZERO)
        for t in range(1, t_max):
            a = alpha[t - 1]
            new = torch.logaddexp(torch.logaddexp(a[:, 2:], a[:, 1:-1]), a[:, :-2] + skip_fill) + emit[:, t]
            alpha[t, :, 2:] = torch.where(live[:, t, None], new, a[:, 2:])  # frozen after the end
        alpha = alpha[:, :, 2:]
        end = (2 * target_lengths)[:, None]
        last = torch.gather(alpha[-1], 1, end.clamp(max=s_len - 1))[:, 0]
        before = torch.gather(alpha[-1], 1, (end - 1).clamp(min=0))[:, 0]
        before = torch.where(target_lengths > 0, before, LOG_ZERO)
        logp = torch.logaddexp(last, before)
        logp = torch.where(lengths > 0, logp, torch.where(target_lengths > 0, LOG_ZERO, 0.0))
        ctx.save_for_backward(log_probs, ext, skip_fill, lengths, target_lengths, emit, alpha, logp, live)
        return -logp

    @staticmethod
    def backward(ctx, grad_nll):
        log_probs, ext, skip_fill, lengths, target_lengths, emit, alpha, logp, live = ctx.saved_tensors
        b, t_max, v = log_probs.shape
        s_len = ext.shape[1]
        s_idx = torch.arange(s_len, device=ext.device)[None, :]
        end = 2 * target_lengths[:, None]
        final = (s_idx == end) | ((s_idx == end - 1) & (target_lengths[:, None] > 0))
        # beta_t in columns 0..S-1 of a buffer whose last two columns stay log(0)
        skip_next = torch.cat([skip_fill[:, 2:], skip_fill.new_full((b, 2), LOG_ZERO)], 1)  # skip(s + 2)
        beta = log_probs.new_full((b, s_len + 2), LOG_ZERO)
        grad_emit = torch.empty_like(emit)
        possible = (logp > IMPOSSIBLE) & (lengths > 0)
        scale = torch.where(possible, grad_nll, 0.0)[:, None]
        for t in range(t_max - 1, -1, -1):
            nxt = torch.logaddexp(torch.logaddexp(beta[:, :-2], beta[:, 1:-1]), beta[:, 2:] + skip_next)
            init = torch.where(final, emit[:, t], LOG_ZERO)
            is_last = (lengths - 1 == t)[:, None]
            cur = torch.where(is_last, init, torch.where(live[:, t, None], nxt + emit[:, t], LOG_ZERO))
            beta = torch.cat([cur, beta[:, s_len:]], 1)
            # d(-log p)/d emit_t(s) = -exp(alpha + beta - emit - log p) (emit counted once in alpha and beta)
            grad_emit[:, t] = -torch.exp(alpha[t] + cur - emit[:, t] - logp[:, None]) * scale
        grad = torch.zeros_like(log_probs).scatter_add_(2, ext[:, None, :].expand(b, t_max, s_len), grad_emit)
        return grad, None, None, None, None
