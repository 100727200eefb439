"""Speech and text span masking against their definitions."""
import torch

from mslam.model.masking import SpeechMaskConfig, SpeechSpanMasker, TextMaskConfig, TextSpanMasker


def runs(row: torch.Tensor):
    """(start, length) of each run of True in a 1-D bool tensor."""
    out, start = [], None
    for i, v in enumerate(row.tolist() + [False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            out.append((start, i - start))
            start = None
    return out


def test_speech_mask_fraction_matches_expectation():
    cfg = SpeechMaskConfig(prob=0.065, span=10)
    masker = SpeechSpanMasker(cfg, d_model=4)
    g = torch.Generator().manual_seed(0)
    T, seeds = 10000, 40
    mask = masker.sample(torch.full((seeds,), T), T, generator=g)
    frac = mask.float().mean().item()
    expected = 1 - (1 - cfg.prob) ** cfg.span  # 0.4891 away from the first span-1 frames
    edge = sum((1 - (1 - cfg.prob) ** (t + 1)) for t in range(cfg.span - 1))
    expected_with_edge = (expected * (T - cfg.span + 1) + edge) / T
    # 400k frames: the standard error is about 0.003 / sqrt(40) even with span correlation
    assert abs(frac - expected_with_edge) < 0.004, (frac, expected_with_edge)
    assert abs(expected - 0.489) < 0.001


def test_speech_mask_respects_lengths_and_spans():
    masker = SpeechSpanMasker(SpeechMaskConfig(prob=0.065, span=10), d_model=4)
    g = torch.Generator().manual_seed(1)
    lens = torch.tensor([300, 57, 3, 0])
    mask = masker.sample(lens, 300, generator=g)
    for b, n in enumerate(lens.tolist()):
        assert not mask[b, n:].any()
        assert (mask[b].sum() > 0) == (n > 0)  # min_spans=1: every non-empty utterance is masked
        for start, length in runs(mask[b]):
            # merged spans are >= span long unless cut by the utterance end
            assert length >= 10 or start + length == n


def test_speech_mask_replacement():
    x = torch.randn(2, 30, 8)
    mask = torch.zeros(2, 30, dtype=torch.bool)
    mask[0, 3:13] = True
    learned = SpeechSpanMasker(SpeechMaskConfig(replace="learned"), d_model=8)
    y = learned.replace(x, mask)
    assert torch.equal(y[~mask], x[~mask])
    assert torch.equal(y[mask], learned.embedding.detach().expand(10, 8))
    noise = SpeechSpanMasker(SpeechMaskConfig(replace="noise", noise_std=0.1), d_model=8)
    z = noise.replace(torch.zeros(4, 1000, 8), torch.ones(4, 1000, dtype=torch.bool))
    assert abs(z.std().item() - 0.1) < 0.005


def test_text_span_masker_ratio_spans_and_replacement():
    cfg = TextMaskConfig(ratio=0.15, span=20, mask_frac=0.8, random_frac=0.1)
    masker = TextSpanMasker(cfg, mask_id=3, random_low=6, random_high=100)
    g = torch.Generator().manual_seed(0)
    B, L = 2000, 200
    lens = torch.randint(100, L + 1, (B,), generator=g)
    tokens = torch.randint(6, 100, (B, L), generator=g)
    tokens[torch.arange(L)[None] >= lens[:, None]] = 1
    out, mask = masker(tokens, lens, generator=g)
    # exact budget per sequence: round(0.15 * n) masked characters, none in the padding
    assert torch.equal(mask.sum(1), (lens.float() * 0.15).round().long())
    assert not (mask & (torch.arange(L)[None] >= lens[:, None])).any()
    # span lengths: runs are multiples of pieces of 20 (touching spans merge); a run shorter than 20
    # is the remainder span; count the runs that can be explained
    bad = 0
    for b in range(200):
        n_target = int(mask[b].sum())
        rem = n_target % 20
        for _, length in runs(mask[b]):
            if not (length % 20 == 0 or length % 20 == rem):
                bad += 1
    assert bad == 0
    # replacement proportions (per span, so count per masked character over many sequences)
    m = mask
    is_mask = (out == 3) & m
    unchanged = (out == tokens) & m
    random_other = m & ~is_mask & ~unchanged
    n = m.sum().item()
    # random draws equal to the original count as unchanged: 1/94 of the random 10%
    assert abs(is_mask.sum().item() / n - 0.8) < 0.02
    assert abs(random_other.sum().item() / n - 0.1 * (1 - 1 / 94)) < 0.015
    assert abs(unchanged.sum().item() / n - (0.1 + 0.1 / 94)) < 0.015
    assert torch.equal(out[~m], tokens[~m])
    assert ((out[random_other] >= 6) & (out[random_other] < 100)).all()


def test_text_span_lengths_are_20_on_isolated_spans():
    masker = TextSpanMasker(TextMaskConfig(ratio=0.15, span=20), mask_id=3, random_low=6, random_high=50)
    g = torch.Generator().manual_seed(3)
    lens = torch.full((500,), 400)  # 60 masked = exactly 3 spans of 20
    _, mask = masker(torch.full((500, 400), 7), lens, generator=g)
    lengths = [length for b in range(500) for _, length in runs(mask[b])]
    assert all(length in (20, 40, 60) for length in lengths)
    assert sum(length == 20 for length in lengths) / len(lengths) > 0.9  # touching spans are rare


def test_text_masker_short_sequences():
    masker = TextSpanMasker(TextMaskConfig(ratio=0.15, span=20), mask_id=3, random_low=6, random_high=50)
    lens = torch.tensor([1, 5, 13, 0])
    tokens = torch.full((4, 13), 9)
    _, mask = masker(tokens, lens)
    assert mask.sum(1).tolist() == [1, 1, 2, 0]
