"""w2v-BERT losses: contrastive (wav2vec 2.0 form, distractors from the same utterance) and diversity."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class Distractors:
    """Masked steps packed per utterance, and the distractors drawn for each.

    positions [B, N]: time index of the i-th masked step of utterance b (N = most masked steps);
    valid [B, N]: whether slot i is a real masked step; index [B, N, K]: for each step, slots (into
    the same utterance's packed axis) of its distractors; index_valid [B, N, K]: whether each is real.
    """
    positions: torch.Tensor
    valid: torch.Tensor
    index: torch.Tensor
    index_valid: torch.Tensor


def sample_distractors(mask: torch.Tensor, num: int, generator: torch.Generator | None = None) -> Distractors:
    """For every masked step, up to `num` distinct distractors drawn uniformly from the OTHER masked
    steps of the same utterance (all of them when the utterance has fewer than num + 1).

    The packed axis has the length of the time axis (N = T), whatever the number of masked steps:
    shapes that do not depend on the data, so nothing here waits for the device.
    """
    b, t = mask.shape
    dev = mask.device
    n = max(t, 1)
    counts = mask.sum(1)
    # masked steps first, in time order (a stable sort on "not masked")
    positions = torch.sort((~mask).to(torch.uint8), dim=1, stable=True).indices if t else \
        torch.zeros(b, n, dtype=torch.long, device=dev)
    valid = torch.arange(n, device=dev)[None, :] < counts[:, None]
    k = max(min(num, n - 1), 0)
    scores = torch.rand((b, n, n), device=dev, generator=generator)
    candidate = valid[:, None, :] & ~torch.eye(n, dtype=torch.bool, device=dev)[None]
    scores = scores.masked_fill(~candidate, -1.0)
    top, index = scores.topk(k, dim=-1)  # k largest random scores = a uniform sample w/o replacement
    index_valid = (top >= 0) & valid[..., None]
    return Distractors(positions, valid, index, index_valid)


def gather_steps(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """x [B, T, ...] -> x at positions [B, N] -> [B, N, ...]."""
    idx = positions.view(*positions.shape, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:])
    return torch.gather(x, 1, idx)


def contrastive_loss(context: torch.Tensor, targets: torch.Tensor, d: Distractors, temperature: float,
                     target_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """wav2vec 2.0 contrastive loss on packed masked steps.

    context, targets: [B, N, D] at d.positions. For step t: -log(exp(sim(c_t, q_t)/k) /
    sum over {q_t} + distractors of exp(sim(c_t, q)/k)), sim = cosine. A distractor that is the same
    vector as the positive is left out (as in wav2vec 2.0): the same codes in `target_ids` [B, N, G],
    which must be the codes the targets were built from (the Gumbel samples, not the argmax).
    A step left with no distractor has nothing to contrast: it counts in neither the loss nor the
    accuracy (a codebook collapsed to one code must not score a free, perfect step). Returns (loss,
    accuracy); both 0 when no step has a distractor.
    """
    with torch.autocast(device_type=context.device.type, enabled=False):
        c = F.normalize(context.float(), dim=-1)
        q = F.normalize(targets.float(), dim=-1)
        sim = torch.bmm(c, q.transpose(1, 2)) / temperature  # [B, N, N]
        pos = sim.diagonal(dim1=1, dim2=2)  # [B, N]
        neg = torch.gather(sim, 2, d.index)  # [B, N, K]
        keep = d.index_valid
        if target_ids is not None and d.index.shape[-1] > 0:
            b, n, kk = d.index.shape
            neg_ids = torch.gather(target_ids, 1, d.index.reshape(b, n * kk, 1).expand(-1, -1, target_ids.shape[-1]))
            keep = keep & ~(neg_ids.view(b, n, kk, -1) == target_ids[:, :, None, :]).all(-1)
        neg = neg.masked_fill(~keep, float("-inf"))
        rows = d.valid & keep.any(-1)  # [B, N]: the steps that count
        count = rows.sum().clamp(min=1).float()
        per_step = torch.logsumexp(torch.cat([pos[..., None], neg], dim=-1), -1) - pos  # finite: pos always is
        loss = torch.where(rows, per_step, 0.0).sum() / count
        hit = (pos[..., None] > neg).all(-1)  # a -inf (left-out) distractor is always beaten
        acc = (hit & rows).sum().float() / count
    return loss, acc.detach()


def diversity_loss(logits: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Codebook diversity from quantiser logits [B, T, G, V] over real frames `valid` [B, T].

    With p_g the softmax averaged over frames: perplexity = sum_g exp(-sum_v p_gv log p_gv) and
    loss = (G*V - perplexity) / (G*V): 0 when every code is used equally, (G*V - G)/(G*V) when the
    codebook has collapsed to one code per group. Returns (loss, perplexity).
    """
    g, v = logits.shape[-2:]
    w = valid[..., None, None].float()
    count = w.sum().clamp(min=1.0)
    avg = (logits.float().softmax(-1) * w).sum(tuple(range(logits.dim() - 2))) / count  # [G, V]
    perplexity = torch.exp(-(avg * torch.log(avg + 1e-7)).sum(-1)).sum()
    loss = torch.where(valid.any(), (g * v - perplexity) / (g * v), 0.0)  # no frame: 0, as for no step
    return loss, torch.where(valid.any(), perplexity, 0.0).detach()
