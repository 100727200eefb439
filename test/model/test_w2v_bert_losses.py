"""w2v-BERT losses: distractor sampling, the contrastive formula, the diversity loss."""
import math

import torch
import torch.nn.functional as F

from mslam.losses import contrastive_loss, diversity_loss, gather_steps, sample_distractors


def test_distractors_are_other_masked_steps_of_the_same_utterance():
    g = torch.Generator().manual_seed(0)
    B, T, K = 5, 60, 10
    mask = torch.rand(B, T, generator=g) < 0.4
    mask[3] = False
    mask[3, 7] = True  # one masked step: no distractor possible
    mask[4] = False
    mask[4, [2, 9, 40]] = True  # three masked steps: only 2 distractors each
    d = sample_distractors(mask, K, generator=g)
    for b in range(B):
        steps = mask[b].nonzero().flatten().tolist()
        n = len(steps)
        assert d.positions[b, :n].tolist() == steps
        assert d.valid[b].sum().item() == n
        for i in range(n):
            idx = d.index[b, i][d.index_valid[b, i]].tolist()
            assert len(idx) == min(K, n - 1)
            assert i not in idx  # never the positive
            assert len(set(idx)) == len(idx)  # distinct
            times = [d.positions[b, j].item() for j in idx]
            assert all(mask[b, t] for t in times)  # only masked steps of utterance b
            assert steps[i] not in times


def test_distractors_are_uniform():
    mask = torch.zeros(1, 12, dtype=torch.bool)
    mask[0, :6] = True
    counts = torch.zeros(6)
    g = torch.Generator().manual_seed(1)
    for _ in range(3000):
        d = sample_distractors(mask, 2, generator=g)
        counts += torch.bincount(d.index[0, 0], minlength=6).float()
    assert counts[0] == 0
    freq = counts[1:] / counts[1:].sum()
    assert (freq - 0.2).abs().max() < 0.02


def test_contrastive_loss_matches_loop_formula():
    g = torch.Generator().manual_seed(0)
    B, T, D, K, kappa = 3, 40, 16, 5, 0.1
    mask = torch.rand(B, T, generator=g) < 0.3
    c_full, q_full = torch.randn(B, T, D, generator=g), torch.randn(B, T, D, generator=g)
    d = sample_distractors(mask, K, generator=g)
    loss, acc = contrastive_loss(gather_steps(c_full, d.positions), gather_steps(q_full, d.positions), d, kappa)
    terms, hits = [], []
    for b in range(B):
        for i in range(int(d.valid[b].sum())):
            t = d.positions[b, i].item()
            negs = [d.positions[b, j].item() for j, ok in zip(d.index[b, i].tolist(), d.index_valid[b, i].tolist()) if ok]
            if not negs:
                continue
            sim = lambda u: F.cosine_similarity(c_full[b, t], q_full[b, u], dim=0).item() / kappa
            num = math.exp(sim(t))
            den = num + sum(math.exp(sim(u)) for u in negs)
            terms.append(-math.log(num / den))
            hits.append(all(sim(t) > sim(u) for u in negs))
    assert abs(loss.item() - sum(terms) / len(terms)) < 1e-5
    assert abs(acc.item() - sum(hits) / len(hits)) < 1e-6


def test_contrastive_loss_drops_distractors_with_the_positives_code():
    mask = torch.ones(1, 4, dtype=torch.bool)
    d = sample_distractors(mask, 3)
    c = torch.randn(1, 4, 8)
    q = torch.randn(1, 4, 8)
    ids = torch.tensor([[[0], [0], [0], [0]]])  # every step has the same code
    loss, _ = contrastive_loss(c, q, d, 0.1, target_ids=ids)
    assert loss.item() == 0.0  # only the positive is left: -log 1


def test_diversity_minimal_for_uniform_and_large_for_collapsed():
    G, V = 2, 8
    valid = torch.ones(1, 64, dtype=torch.bool)
    # uniform use: each frame confident on a different code, codes used equally
    uniform = torch.full((1, 64, G, V), -20.0)
    for t in range(64):
        uniform[0, t, :, t % V] = 20.0
    loss_u, ppl_u = diversity_loss(uniform, valid)
    assert abs(loss_u.item()) < 1e-4 and abs(ppl_u.item() - G * V) < 1e-2
    # collapsed: every frame picks code 0
    collapsed = torch.full((1, 64, G, V), -20.0)
    collapsed[..., 0] = 20.0
    loss_c, ppl_c = diversity_loss(collapsed, valid)
    assert abs(loss_c.item() - (G * V - G) / (G * V)) < 1e-4 and abs(ppl_c.item() - G) < 1e-3
    # anything in between lies in between; padded frames are ignored
    mixed = torch.randn(1, 64, G, V)
    assert loss_u.item() <= diversity_loss(mixed, valid)[0].item() <= loss_c.item()
    half = valid.clone()
    half[0, 32:] = False
    junk = uniform.clone()
    junk[0, 32:] = collapsed[0, 32:]
    assert torch.allclose(diversity_loss(junk, half)[0], diversity_loss(uniform[:, :32], valid[:, :32])[0])
