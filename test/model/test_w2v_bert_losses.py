"""w2v-BERT losses: distractor sampling, the contrastive formula, the diversity loss."""
import math

import pytest
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


def test_a_step_whose_distractors_all_share_its_code_counts_nowhere():
    mask = torch.ones(1, 4, dtype=torch.bool)
    d = sample_distractors(mask, 3)
    c, q = torch.randn(1, 4, 8), torch.randn(1, 4, 8)
    same = torch.zeros(1, 4, 1, dtype=torch.long)  # a collapsed codebook: every step has code 0
    loss, acc = contrastive_loss(c, q, d, 0.1, target_ids=same)
    assert loss.item() == 0.0 and acc.item() == 0.0  # not a free, perfect prediction
    # utterance 0 collapsed (one code), utterance 1 with steps 0 and 1 sharing a code: utterance 1 alone
    # is scored, each step against the steps whose code differs from its own
    mask = torch.ones(2, 4, dtype=torch.bool)
    d = sample_distractors(mask, 3)
    c, q = torch.randn(2, 4, 8), torch.randn(2, 4, 8)
    ids = torch.tensor([[[1], [1], [1], [1]], [[5], [5], [6], [7]]])
    loss, acc = contrastive_loss(c, q, d, 0.1, target_ids=ids)
    cn, qn = F.normalize(c[1], dim=-1), F.normalize(q[1], dim=-1)
    terms, hits = [], []
    for t in range(4):
        sims = (cn[t] @ qn.T) / 0.1
        others = [u for u in range(4) if ids[1, u, 0] != ids[1, t, 0]]
        terms.append((torch.logsumexp(sims[[t] + others], 0) - sims[t]).item())
        hits.append(all(sims[t] > sims[u] for u in others))
    assert loss.item() == pytest.approx(sum(terms) / 4, abs=1e-5)
    assert acc.item() == pytest.approx(sum(hits) / 4)


def test_distractors_are_excluded_by_the_sampled_codes_not_the_argmax():
    """A quantiser whose logits are all equal has one argmax code for every frame, yet its Gumbel
    samples differ: excluding by the argmax left no distractor (loss 0, accuracy 1)."""
    from mslam.model.pretrain import SpeechPart
    from mslam.tasks.pretrain import build_pretrain_model, load_pretrain_config
    cfg = load_pretrain_config("tiny")
    cfg.objective.variant = "w2v-bert"
    torch.manual_seed(0)
    model = build_pretrain_model(cfg)
    with torch.no_grad():
        model.quantizer.to_logits.weight.zero_()
        model.quantizer.to_logits.bias.zero_()
    g = torch.Generator().manual_seed(0)
    out = model.speech_losses(SpeechPart(torch.randn(2, 200, 80, generator=g), torch.tensor([200, 160])), step=0)
    assert out["w2v_contrastive"].item() > 1.0  # ~log(1 + K) for an untrained model
    assert out["w2v_contrastive_acc"].item() < 0.5
    # and the codes returned are the ones the vectors were built from
    logits = torch.randn(3, 5, 1, 32, generator=g)
    vectors, codes = model.quantizer.quantize(logits, 2.0)
    assert torch.allclose(vectors, model.quantizer.codebook[0, codes[..., 0]])


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


def test_quantizer_input_standardised_per_utterance_over_real_frames():
    from mslam.model.quantizer import GumbelVectorQuantizer
    torch.manual_seed(0)
    quant = GumbelVectorQuantizer(8, 1, 16, 8, input_norm="utterance", init_std=1.0)
    assert 0.8 < quant.to_logits.weight.std().item() < 1.2  # wav2vec 2.0's scale, not 8^-0.5
    x = torch.randn(2, 10, 8) * 3 + 5
    valid = torch.ones(2, 10, dtype=torch.bool)
    valid[1, 6:] = False
    padded = x.clone()
    padded[1, 6:] = 1e4  # padding must not move the statistics
    logits = quant.logits(padded, valid)
    for b, n in ((0, 10), (1, 6)):
        real = x[b, :n]
        z = (real - real.mean(0)) / (real.std(0, unbiased=False) + 1e-5)
        assert torch.allclose(logits[b, :n, 0], quant.to_logits(z), atol=1e-4)
