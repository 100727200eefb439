"""Task decoders: RNN-T loss and search, CTC greedy and prefix beam search, the Transformer decoder's
loss and beam search, SpecAugment and the pooled classifier.

Losses and searches are checked against brute force: every RNN-T alignment, every CTC frame path,
every translation up to a short length limit, enumerated explicitly.
"""
from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from mslam.model.decoders import (PooledClassifier, RNNTConfig, RNNTDecoder, TransformerDecoder,
                                  TransformerDecoderConfig, ctc_greedy, ctc_prefix_beam_search, length_penalty)
from mslam.model.finetune import SpecAugmentConfig, spec_augment

BLANK = 0


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tensors are tiny: one intra-op thread is much faster than several on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def logsumexp(xs) -> float:
    xs = list(xs)
    m = max(xs)
    return m if m == -math.inf else m + math.log(sum(math.exp(x - m) for x in xs))


# ----------------------------------------------------------------------------- RNN-T
def rnnt_model(seed: int = 0, vocab: int = 4, enc_dim: int = 6) -> RNNTDecoder:
    torch.manual_seed(seed)
    return RNNTDecoder(RNNTConfig(layers=1, hidden=8, joint_dim=8, dropout=0.0), vocab, enc_dim).eval()


@torch.no_grad()
def joint_logprobs(model: RNNTDecoder, enc: torch.Tensor, labels: list[int]) -> torch.Tensor:
    """log P(k | frame t, prefix labels[:u]) as [T, U+1, V] for one utterance enc [T, D]."""
    pred, _ = model.predict(torch.tensor([[BLANK, *labels]]))            # [1, U+1, J]
    logits = model.joint(model.enc_proj(enc)[:, None], pred[0][None])    # [T, U+1, V]
    return logits.double().log_softmax(-1)


def brute_rnnt_logprob(logp: torch.Tensor, labels: list[int], cap: int | None = None) -> float:
    """log P(labels) summed over every alignment, enumerated explicitly.

    Lattice: at (t, u) <blank> moves to (t+1, u), the symbol labels[u] to (t, u+1); a path consumes
    every frame, so it ends with a <blank> at (T-1, U). With `cap`, at most `cap` symbols are emitted
    per frame, and a frame that reaches the cap ends without a <blank> (the searches' convention).
    """
    T, U = logp.shape[0], len(labels)
    total = []
    if cap is None:
        # choose which of the first T+U-1 steps are symbols (the last step is the final blank)
        for symbol_steps in itertools.combinations(range(T + U - 1), U):
            t = u = 0
            s = 0.0
            for step in range(T + U):
                if step in symbol_steps:
                    s += float(logp[t, u, labels[u]])
                    u += 1
                else:
                    s += float(logp[t, u, BLANK])
                    t += 1
            assert (t, u) == (T, U)
            total.append(s)
    else:
        for counts in itertools.product(range(cap + 1), repeat=T):
            if sum(counts) != U:
                continue
            u, s = 0, 0.0
            for t, c in enumerate(counts):
                for _ in range(c):
                    s += float(logp[t, u, labels[u]])
                    u += 1
                if c < cap:
                    s += float(logp[t, u, BLANK])
            total.append(s)
    return logsumexp(total) if total else -math.inf


def test_rnnt_loss_equals_brute_force_alignment_sum():
    model = rnnt_model()
    torch.manual_seed(1)
    enc = torch.randn(2, 3, 6)
    enc_lens = torch.tensor([3, 2])
    targets = torch.tensor([[1, 3], [2, 0]])
    target_lens = torch.tensor([2, 1])
    loss = model.loss(enc, enc_lens, targets, target_lens).detach()

    nll = 0.0
    for b in range(2):
        labels = targets[b, :target_lens[b]].tolist()
        logp = joint_logprobs(model, enc[b, :enc_lens[b]], labels)
        nll -= brute_rnnt_logprob(logp, labels)
    assert float(loss) == pytest.approx(nll / 3, rel=1e-5)   # 3 target symbols in the batch

    # padding values (targets past target_lens, frames past enc_lens) do not change the loss
    enc2 = enc.clone()
    enc2[1, 2] = 100.0
    targets2 = torch.tensor([[1, 3], [2, 3]])
    assert model.loss(enc2, enc_lens, targets2, target_lens).item() == pytest.approx(float(loss), rel=1e-6)


def test_rnnt_loss_single_frame_single_symbol_by_hand():
    # T=1, U=1: the only alignment is symbol at (0,0) then blank at (0,1).
    model = rnnt_model(seed=3)
    enc = torch.randn(1, 1, 6)
    logp = joint_logprobs(model, enc[0], [2])
    expected = -(float(logp[0, 0, 2]) + float(logp[0, 1, BLANK]))
    loss = model.loss(enc, torch.tensor([1]), torch.tensor([[2]]), torch.tensor([1])).detach()
    assert float(loss) == pytest.approx(expected, rel=1e-5)


@torch.no_grad()
def manual_rnnt_greedy(model: RNNTDecoder, enc: torch.Tensor, max_symbols: int) -> list[int]:
    hyp: list[int] = []
    for t in range(enc.shape[0]):
        for _ in range(max_symbols):
            logp = joint_logprobs(model, enc, hyp)[t, len(hyp)]
            best = int(logp.argmax())
            if best == BLANK:
                break
            hyp.append(best)
    return hyp


def _lively_rnnt(seed: int, vocab: int = 3) -> RNNTDecoder:
    """A random RNN-T whose blank is not overwhelmingly likely, so that hypotheses are non-trivial."""
    model = rnnt_model(seed, vocab=vocab)
    with torch.no_grad():
        model.out.weight.mul_(4.0)
        model.out.bias.zero_()
        model.out.bias[BLANK] = -0.5
    return model


def test_rnnt_greedy_search_matches_manual_greedy_and_ignores_padding():
    max_symbols = 2
    lengths = [4, 2, 3]
    nonempty = 0
    for seed in range(4):
        model = _lively_rnnt(seed, vocab=4)
        torch.manual_seed(100 + seed)
        enc = torch.randn(3, 4, 6)
        enc[1, 2:] = 50.0  # garbage in the padding
        enc[2, 3:] = -50.0
        batched = model.greedy_search(enc, torch.tensor(lengths), max_symbols=max_symbols)
        for b, n in enumerate(lengths):
            expected = manual_rnnt_greedy(model, enc[b, :n], max_symbols)
            assert batched[b] == expected
            nonempty += bool(expected)
    assert nonempty >= 3  # the check is not vacuous


def test_rnnt_beam_search_without_pruning_finds_the_most_probable_labels():
    """With a beam wider than the number of prefixes, beam search is exact: its hypothesis is the
    label sequence of highest total probability (all alignments summed, at most `max_symbols` per
    frame), found here by enumerating every sequence; so its probability is >= greedy's."""
    T, max_symbols, vocab = 2, 2, 3
    symbols = range(1, vocab)
    candidates = [list(y) for n in range(T * max_symbols + 1) for y in itertools.product(symbols, repeat=n)]
    differs = 0
    for seed in range(6):
        model = _lively_rnnt(seed, vocab=vocab)
        torch.manual_seed(200 + seed)
        enc = torch.randn(1, T, 6)
        scores = {tuple(y): brute_rnnt_logprob(joint_logprobs(model, enc[0], y), y, cap=max_symbols)
                  for y in candidates}
        assert logsumexp(scores.values()) == pytest.approx(0.0, abs=1e-6)  # a distribution over sequences
        best = max(scores, key=scores.get)
        beam = model.beam_search(enc, torch.tensor([T]), beam=64, max_symbols=max_symbols)[0]
        assert scores[tuple(beam)] == pytest.approx(scores[best], abs=1e-9)
        greedy = model.greedy_search(enc, torch.tensor([T]), max_symbols=max_symbols)[0]
        assert scores[tuple(beam)] >= scores[tuple(greedy)] - 1e-9
        differs += beam != greedy
    assert differs >= 1  # at least one case where summing over alignments beats the greedy path


def test_rnnt_beam_and_greedy_agree_when_one_path_dominates():
    # Every weight zero except: a one-hot frame code k goes to joint unit k (x3), the prediction
    # network adds 0.5 to unit 0 (blank), and the output layer reads unit k as symbol k (x20).
    # The zero LSTM outputs 0 whatever the prefix. A frame coded k > 0 then gives symbol k a logit of
    # 20 tanh(3) ~ 19.9 against blank's 20 tanh(0.5) ~ 9.2; a frame coded 0 gives blank 20 tanh(3.5).
    # With one symbol per frame, "1 3 2" is emitted along one alignment of probability ~1.
    model = rnnt_model(seed=0, vocab=4, enc_dim=4)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.enc_proj.weight[:4, :4] = torch.eye(4) * 3.0
        model.pred_proj.bias[0] = 0.5
        model.out.weight[:4, :4] = torch.eye(4) * 20.0
    enc = F.one_hot(torch.tensor([[1, 0, 3, 2, 0]]), 4).float()
    greedy = model.greedy_search(enc, torch.tensor([5]), max_symbols=1)[0]
    beam = model.beam_search(enc, torch.tensor([5]), beam=4, max_symbols=1)[0]
    assert greedy == [1, 3, 2]
    assert beam == greedy
    logp = joint_logprobs(model, enc[0], greedy)
    assert brute_rnnt_logprob(logp, greedy, cap=1) > math.log(0.99)


# ----------------------------------------------------------------------------- CTC
def test_ctc_greedy_hand_example():
    # frames argmax: a a <b> a b b  -> "a a b" (a=1, b=2, blank=0)
    path = [1, 1, 0, 1, 2, 2]
    torch.manual_seed(0)
    logits = F.one_hot(torch.tensor([path, path]), 3).float() * 5.0 + torch.randn(2, 6, 3) * 0.1
    assert ctc_greedy(logits, torch.tensor([6, 4])) == [[1, 1, 2], [1, 1]]
    # a leading blank, repeats separated by blanks, trailing blanks
    path = [0, 2, 2, 0, 0, 2, 1, 0]
    logits = F.one_hot(torch.tensor([path]), 3).float()
    assert ctc_greedy(logits, torch.tensor([8])) == [[2, 2, 1]]
    assert ctc_greedy(logits, torch.tensor([0])) == [[]]


def collapse(path) -> tuple[int, ...]:
    out, prev = [], None
    for tok in path:
        if tok != BLANK and tok != prev:
            out.append(tok)
        prev = tok
    return tuple(out)


def brute_ctc(logits: torch.Tensor) -> dict[tuple[int, ...], float]:
    """log P(label sequence) for every label sequence, by summing the probabilities of all V^T paths."""
    logp = logits.double().log_softmax(-1)
    T, V = logp.shape
    per_label: dict[tuple[int, ...], list[float]] = {}
    for path in itertools.product(range(V), repeat=T):
        per_label.setdefault(collapse(path), []).append(sum(float(logp[t, k]) for t, k in enumerate(path)))
    return {k: logsumexp(v) for k, v in per_label.items()}


@pytest.mark.parametrize("seed", range(5))
def test_ctc_prefix_beam_search_equals_brute_force(seed):
    torch.manual_seed(seed)
    logits = torch.randn(2, 5, 3) * 2.0  # unnormalised: the search normalises itself
    lengths = torch.tensor([5, 3])
    out = ctc_prefix_beam_search(logits, lengths, beam=64)  # wider than the 63 label sequences: exact
    for b, n in enumerate(lengths.tolist()):
        scores = brute_ctc(logits[b, :n])
        assert logsumexp(scores.values()) == pytest.approx(0.0, abs=1e-9)
        best = max(scores, key=scores.get)
        assert scores[tuple(out[b])] == pytest.approx(scores[best], abs=1e-6)
        assert tuple(out[b]) == best
    # length masking: the tail of a shorter utterance is ignored
    assert out[1] == ctc_prefix_beam_search(logits[1:, :3], torch.tensor([3]), beam=64)[0]
    garbage = logits.clone()
    garbage[1, 3:] = torch.tensor([-9.0, 9.0, -9.0])
    assert ctc_prefix_beam_search(garbage, lengths, beam=64)[1] == out[1]
    # beam 10 (pruning) finds the same best sequence on these small cases
    assert ctc_prefix_beam_search(logits, lengths, beam=10) == out


def test_ctc_prefix_beam_search_sums_paths_unlike_best_path():
    # Two frames, P(blank)=0.4, P(a)=0.35, P(b)=0.25 on each. The best path is "<b> <b>" (0.16), but
    # "a" collects a a + a <b> + <b> a = 0.1225 + 0.14 + 0.14 = 0.4025.
    p = torch.tensor([[0.4, 0.35, 0.25], [0.4, 0.35, 0.25]]).log()[None]
    assert ctc_greedy(p, torch.tensor([2]))[0] == []
    assert ctc_prefix_beam_search(p, torch.tensor([2]), beam=3)[0] == [1]
    scores = brute_ctc(p[0])
    assert math.exp(scores[(1,)]) == pytest.approx(0.4025)
    assert math.exp(scores[()]) == pytest.approx(0.16)


# ----------------------------------------------------------------------------- Transformer decoder
PAD, BOS, EOS, VOCAB, ENC_DIM = 0, 2, 3, 12, 10


def transformer(seed: int = 0, label_smoothing: float = 0.0, vocab: int = VOCAB) -> TransformerDecoder:
    torch.manual_seed(seed)
    cfg = TransformerDecoderConfig(layers=1, d_model=16, heads=2, ffn_dim=32, dropout=0.0,
                                   label_smoothing=label_smoothing)
    model = TransformerDecoder(cfg, vocab, ENC_DIM, pad_id=PAD, bos_id=BOS, eos_id=EOS).eval()
    with torch.no_grad():
        # sharper distributions, a stronger pull of the memory, <pad>/<s> practically never emitted,
        # and </s> likely enough that hypotheses end at various lengths, not only at the limit; larger
        # token embeddings, so that the prefix matters as much as the memory
        model.out.weight.mul_(2.0)
        model.enc_proj.weight.mul_(3.0)
        model.embed.weight.mul_(4.0)
        model.out.bias[PAD] = model.out.bias[BOS] = -30.0
        model.out.bias[EOS] += 0.4
    return model


@torch.no_grad()
def step_logprobs(model: TransformerDecoder, enc: torch.Tensor, prefix: list[int]) -> torch.Tensor:
    """log P(next token | <s> prefix) for one utterance enc [T, D] (no padding)."""
    memory, pad = model.memory(enc[None], torch.tensor([enc.shape[0]]))
    logits = model.logits(torch.tensor([[BOS, *prefix]]), memory, pad)
    return logits[0, -1].double().log_softmax(-1)


def limit_of(n_frames: int, max_len_ratio: float = 0.5, max_len: int = 256) -> int:
    return min(max_len, int(max_len_ratio * n_frames) + 5)


def manual_greedy(model, enc, limit) -> list[int]:
    hyp: list[int] = []
    for _ in range(limit):
        tok = int(step_logprobs(model, enc, hyp).argmax())
        if tok == EOS:
            break
        hyp.append(tok)
    return hyp


def hyp_score(model, enc, hyp: list[int], limit: int, alpha: float) -> float:
    """The beam search's ranking score: sum of log-probs of hyp and </s> (no </s> when the length
    limit cut the hypothesis), over length_penalty(len + 1, alpha)."""
    s = sum(float(step_logprobs(model, enc, hyp[:i])[tok]) for i, tok in enumerate(hyp))
    if len(hyp) < limit:
        s += float(step_logprobs(model, enc, hyp)[EOS])
    return s / length_penalty(len(hyp) + 1, alpha)


def test_length_penalty_definition():
    assert length_penalty(7, 0.0) == 1.0
    assert length_penalty(1, 1.0) == pytest.approx(1.0)
    assert length_penalty(7, 1.0) == pytest.approx(2.0)
    assert length_penalty(13, 0.5) == pytest.approx(math.sqrt(3.0))


def _memories(seed: int, lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    enc = torch.randn(len(lengths), max(lengths), ENC_DIM)
    for b, n in enumerate(lengths):
        enc[b, n:] = 77.0  # garbage in the padding
    return enc, torch.tensor(lengths)


@pytest.mark.parametrize("seed", range(3))
def test_beam_search_beam1_alpha0_is_greedy(seed):
    model = transformer(seed)
    lengths = [6, 3, 9]
    enc, enc_lens = _memories(10 + seed, lengths)
    out = model.beam_search(enc, enc_lens, beam=1, alpha=0.0)
    for b, n in enumerate(lengths):
        assert out[b] == manual_greedy(model, enc[b, :n], limit_of(n))


def beam1_reference(model, enc, limit, alpha) -> list[int]:
    """Beam search with one live prefix, as documented: the prefix follows the best token other than
    </s>; where </s> is the best token the prefix ending there is set aside with its score over the
    length penalty; at the length limit the best token ends the prefix. The result is the best
    ending met along the way (a correct early stop never cuts the winner)."""
    prefix, s, ends = [], 0.0, []
    for t in range(limit):
        logp = step_logprobs(model, enc, prefix)
        order = logp.argsort(descending=True).tolist()
        if t + 1 >= limit:
            hyp = prefix + ([] if order[0] == EOS else [order[0]])
            ends.append(((s + float(logp[order[0]])) / length_penalty(len(hyp) + 1, alpha), hyp))
            break
        if order[0] == EOS:
            ends.append(((s + float(logp[EOS])) / length_penalty(len(prefix) + 1, alpha), list(prefix)))
        tok = order[1] if order[0] == EOS else order[0]
        prefix, s = prefix + [tok], s + float(logp[tok])
    return max(ends)[1]


def test_beam_search_beam1_with_length_penalty_keeps_the_best_ending():
    """With alpha > 0 a longer ending can win after </s> was the best token once: the search must
    not stop before no live prefix can beat the ending it holds."""
    beyond_first_end = 0
    for seed in range(4):
        model = transformer(seed)
        lengths = [8, 4, 12]
        enc, enc_lens = _memories(70 + seed, lengths)
        for alpha in (0.0, 1.0, 3.0):
            out = model.beam_search(enc, enc_lens, beam=1, alpha=alpha)
            for b, n in enumerate(lengths):
                expected = beam1_reference(model, enc[b, :n], limit_of(n), alpha)
                assert out[b] == expected
                beyond_first_end += expected != manual_greedy(model, enc[b, :n], limit_of(n))
    assert beyond_first_end >= 1


def test_beam_search_wider_beam_scores_at_least_greedy():
    alpha = 1.0
    better = 0
    for seed in range(4):
        model = transformer(seed)
        lengths = [8, 4]
        enc, enc_lens = _memories(20 + seed, lengths)
        out = model.beam_search(enc, enc_lens, beam=5, alpha=alpha)
        for b, n in enumerate(lengths):
            limit = limit_of(n)
            greedy = manual_greedy(model, enc[b, :n], limit)
            s_beam = hyp_score(model, enc[b, :n], out[b], limit, alpha)
            s_greedy = hyp_score(model, enc[b, :n], greedy, limit, alpha)
            assert s_beam >= s_greedy - 1e-6
            better += s_beam > s_greedy + 1e-6
    assert better >= 1


# (1, 1.0): the length penalty changes the winner; (2, 2.0), (6, 2.0): ((5 + |y| + 1) / 6) vs
# ((5 + |y|) / 6) changes it; 1 and 4: a beam of 1 ends elsewhere.
@pytest.mark.parametrize("seed,alpha", [(1, 0.0), (1, 1.0), (4, 0.0), (7, 1.0), (2, 2.0), (6, 2.0), (0, 3.0)])
def test_beam_search_exhaustive_equals_brute_force(seed, alpha):
    """max_len=2 and a beam as wide as the vocabulary: nothing is pruned, so the result is the
    best-scoring of every hypothesis of length <= 2 (</s> never inside one), each scored by hand."""
    vocab = 7
    model = transformer(seed, vocab=vocab)
    lengths = [5, 3]
    enc, enc_lens = _memories(30 + seed, lengths)
    out = model.beam_search(enc, enc_lens, beam=vocab, alpha=alpha, max_len=2)
    tokens = [k for k in range(vocab) if k != EOS]
    for b, n in enumerate(lengths):
        e = enc[b, :n]
        every = [[]] + [[k] for k in tokens] + [[k, j] for k in tokens for j in tokens]
        scores = {tuple(h): hyp_score(model, e, h, 2, alpha) for h in every}
        best = max(scores, key=scores.get)
        assert scores[tuple(out[b])] == pytest.approx(scores[best], abs=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 4])
def test_beam_search_batched_equals_per_utterance(seed):
    model = transformer(seed)
    lengths = [9, 4, 6]
    enc, enc_lens = _memories(40 + seed, lengths)
    lengths_seen = set()
    for beam, alpha in ((1, 1.0), (1, 0.0), (4, 1.0), (3, 0.0)):
        batched = model.beam_search(enc, enc_lens, beam=beam, alpha=alpha)
        single = [model.beam_search(enc[b:b + 1, :n], torch.tensor([n]), beam=beam, alpha=alpha)[0]
                  for b, n in enumerate(lengths)]
        assert batched == single
        lengths_seen |= {len(h) for h in batched}
    assert max(lengths_seen) > 0


def test_transformer_loss_is_teacher_forced_cross_entropy():
    model = transformer(3)
    enc, enc_lens = _memories(50, [5, 3])
    targets = torch.tensor([[4, 5, 6, 7], [8, 9, 0, 0]])
    target_lens = torch.tensor([4, 2])
    loss, acc = (x.detach() for x in model.loss(enc, enc_lens, targets, target_lens))

    nll, correct, count = 0.0, 0, 0
    for b, n in enumerate([5, 3]):
        y = targets[b, :target_lens[b]].tolist()
        for i, tok in enumerate(y + [EOS]):  # input <s> y[:i] predicts y[i], then </s>
            logp = step_logprobs(model, enc[b, :n], y[:i])
            nll -= float(logp[tok])
            correct += int(logp.argmax()) == tok
            count += 1
    assert count == 8
    assert float(loss) == pytest.approx(nll / count, rel=1e-5)
    assert float(acc) == pytest.approx(correct / count)

    # values past target_lens do not matter
    targets2 = torch.tensor([[4, 5, 6, 7], [8, 9, 11, 5]])
    loss2, acc2 = (x.detach() for x in model.loss(enc, enc_lens, targets2, target_lens))
    assert float(loss2) == pytest.approx(float(loss), rel=1e-6)
    assert float(acc2) == pytest.approx(float(acc))


def test_transformer_loss_label_smoothing():
    # with smoothing eps: (1 - eps) * NLL + eps * mean over the vocabulary of -log p (PyTorch's definition)
    eps = 0.1
    model = transformer(4, label_smoothing=eps)
    enc, enc_lens = _memories(60, [4])
    y = [5, 6]
    loss = model.loss(enc, enc_lens, torch.tensor([y]), torch.tensor([2]))[0].detach()
    total = 0.0
    for i, tok in enumerate(y + [EOS]):
        logp = step_logprobs(model, enc[0], y[:i])
        total += (1 - eps) * -float(logp[tok]) + eps * -float(logp.mean())
    assert float(loss) == pytest.approx(total / 3, rel=1e-5)


# ----------------------------------------------------------------------------- SpecAugment
def test_spec_augment_without_masks_is_identity():
    feats = torch.randn(3, 20, 8)
    lengths = torch.tensor([20, 11, 5])
    out = spec_augment(feats, lengths, SpecAugmentConfig(freq_masks=0, time_masks=0))
    assert torch.equal(out, feats)
    out = spec_augment(feats, lengths, SpecAugmentConfig(freq_masks=2, freq_width=0, time_masks=2,
                                                         time_width=0.0))
    assert torch.equal(out, feats)


def _masked_runs(mask_1d: torch.Tensor) -> list[tuple[int, int]]:
    """(start, end) of the runs of True."""
    runs, start = [], None
    for i, v in enumerate(mask_1d.tolist() + [False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            runs.append((start, i))
            start = None
    return runs


def test_spec_augment_frequency_masks():
    f, width = 16, 5
    lengths = torch.tensor([30, 17])
    seen_masked = 0
    for seed in range(40):
        torch.manual_seed(seed)
        feats = torch.randn(2, 30, f) + 3.0
        out = spec_augment(feats, lengths, SpecAugmentConfig(freq_masks=1, freq_width=width, time_masks=0))
        for b, n in enumerate(lengths.tolist()):
            mean = feats[b, :n].mean()
            changed = out[b] != feats[b]
            bins = changed[:n].any(0)
            # a frequency mask covers whole bins: every valid frame of a masked bin
            assert torch.equal(changed[:n], bins[None].expand(n, f))
            runs = _masked_runs(bins)
            assert len(runs) <= 1
            assert int(bins.sum()) <= width
            assert torch.allclose(out[b][changed], mean.expand(int(changed.sum())))
            assert torch.equal(out[b][~changed], feats[b][~changed])
            seen_masked += bool(runs)
    assert seen_masked > 20


def test_spec_augment_time_masks_stay_within_the_utterance():
    t, f, ratio = 40, 6, 0.2
    lengths = torch.tensor([40, 25])
    seen_masked = 0
    for seed in range(40):
        torch.manual_seed(seed)
        feats = torch.randn(2, t, f)
        out = spec_augment(feats, lengths, SpecAugmentConfig(freq_masks=0, time_masks=2, time_width=ratio))
        for b, n in enumerate(lengths.tolist()):
            mean = feats[b, :n].mean()
            changed = out[b] != feats[b]
            frames = changed.any(1)
            assert torch.equal(changed, frames[:, None].expand(t, f))   # whole frames
            assert not frames[n:].any()                                  # never the padding
            runs = _masked_runs(frames)
            assert len(runs) <= 2
            widest = int(n * ratio)
            # two masks: each run is one mask or two overlapping/adjacent ones
            assert all(e - s <= 2 * widest for s, e in runs)
            assert int(frames.sum()) <= 2 * widest
            assert torch.allclose(out[b][changed], mean.expand(int(changed.sum())))
            seen_masked += bool(runs)
    assert seen_masked > 20


def test_spec_augment_single_time_mask_width():
    lengths = torch.tensor([50, 30])
    ratio = 0.1
    widths = {0: set(), 1: set()}
    for seed in range(60):
        torch.manual_seed(seed)
        feats = torch.randn(2, 50, 4)
        out = spec_augment(feats, lengths, SpecAugmentConfig(freq_masks=0, time_masks=1, time_width=ratio))
        for b, n in enumerate(lengths.tolist()):
            frames = (out[b] != feats[b]).any(1)
            runs = _masked_runs(frames)
            assert len(runs) <= 1
            w = runs[0][1] - runs[0][0] if runs else 0
            assert w <= int(n * ratio)
            assert not frames[n:].any()
            widths[b].add(w)
    # the widths drawn span 0 .. int(length * ratio)
    assert widths[0] == set(range(0, 6)) and widths[1] == set(range(0, 4))


# ----------------------------------------------------------------------------- pooled classifier
@pytest.mark.parametrize("pooling", ["max", "mean", "attention"])
def test_pooled_classifier_ignores_padding(pooling):
    torch.manual_seed(0)
    clf = PooledClassifier(5, 3, dropout=0.5, pooling=pooling).eval()
    enc = torch.randn(2, 6, 5)
    lens = torch.tensor([6, 4])
    out = clf(enc, lens)
    padded = torch.cat([enc, torch.full((2, 3, 5), 1e3)], 1)
    padded[1, 4:] = -1e3  # garbage past the length of utterance 1, inside and beyond the original T
    assert torch.allclose(out, clf(padded, lens), atol=1e-5)
    # equals the linear layer applied to the pooled real frames
    real = [enc[0], enc[1, :4]]
    if pooling == "max":
        pooled = [x.amax(0) for x in real]
    elif pooling == "mean":
        pooled = [x.mean(0) for x in real]
    else:  # softmax over the frames of a linear score
        pooled = [(clf.score(x).squeeze(-1).softmax(0)[:, None] * x).sum(0) for x in real]
    assert torch.allclose(out, torch.stack([clf.out(p) for p in pooled]), atol=1e-6)
