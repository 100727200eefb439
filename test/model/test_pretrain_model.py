"""PretrainModel: variants, missing batch parts, the weighted total, autocast."""
import pytest
import torch

from mslam.model.pretrain import PairedPart, PretrainBatch, SpeechPart, TextPart
from mslam.tasks.pretrain import build_pretrain_model, load_pretrain_config


def make_batch(g):
    feats, flens = torch.randn(2, 90, 80, generator=g), torch.tensor([90, 70])
    tokens, tlens = torch.randint(6, 64, (2, 12), generator=g), torch.tensor([12, 9])
    tokens[1, 9:] = 1
    return PretrainBatch(SpeechPart(feats, flens), TextPart(tokens, tlens), PairedPart(feats, flens, tokens, tlens))


LOSSES = {"w2v-bert": {"w2v_contrastive", "w2v_diversity", "w2v_mlm"},
          "mslam-tlm": {"w2v_contrastive", "w2v_diversity", "w2v_mlm", "text_mlm", "tlm_text", "tlm_speech"},
          "mslam-ctc": {"w2v_contrastive", "w2v_diversity", "w2v_mlm", "text_mlm", "tlm_text", "tlm_speech", "ctc"}}


@pytest.mark.parametrize("variant", list(LOSSES))
def test_variants_and_weighted_total(variant):
    cfg = load_pretrain_config("tiny")
    cfg.objective.variant = variant
    cfg.objective.weights.text = 0.3
    cfg.objective.weights.paired = 0.03
    torch.manual_seed(0)
    model = build_pretrain_model(cfg)
    out = model(make_batch(torch.Generator().manual_seed(0)), step=100)
    names = LOSSES[variant]
    assert names <= set(out) and not (set(LOSSES["mslam-ctc"]) - names) & set(out)
    w = cfg.objective.weights.term_weights()
    assert torch.allclose(out["loss"], sum(w[k] * out[k] for k in names))
    assert w["w2v_diversity"] == pytest.approx(0.1) and w["ctc"] == pytest.approx(0.03)
    assert out["gumbel_temp"].item() == pytest.approx(cfg.objective.quantizer.temperature(100))
    out["loss"].backward()
    assert (model.encoder.text_frontend is None) == (variant == "w2v-bert")


def test_missing_parts_are_skipped():
    torch.manual_seed(0)
    model = build_pretrain_model("tiny")
    full = make_batch(torch.Generator().manual_seed(0))
    only_text = model(PretrainBatch(text=full.text))
    assert set(k for k in only_text if not k.endswith(("_acc", "_frac"))) == {"text_mlm", "loss"}
    only_paired = model(PretrainBatch(paired=full.paired))
    assert {"tlm_text", "tlm_speech", "ctc"} <= set(only_paired) and "w2v_contrastive" not in only_paired
    with pytest.raises(ValueError, match="no part"):
        model(PretrainBatch())


def test_bfloat16_autocast_runs_and_keeps_losses_float32():
    torch.manual_seed(0)
    model = build_pretrain_model("tiny")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(make_batch(torch.Generator().manual_seed(1)))
    assert out["ctc"].dtype == torch.float32 and out["w2v_contrastive"].dtype == torch.float32
    out["loss"].backward()
    assert torch.isfinite(out["loss"])


def test_utterance_spread_is_the_spread_of_pooled_outputs_and_tells_a_collapse():
    from mslam.model.pretrain import utterance_spread
    g = torch.Generator().manual_seed(0)
    top, valid = torch.randn(3, 5, 4, generator=g), torch.tensor([[1] * 5, [1] * 3 + [0] * 2, [1] * 4 + [0]]).bool()
    pooled = torch.stack([top[b, valid[b]].mean(0) for b in range(3)])
    assert utterance_spread(top, valid).item() == pytest.approx((pooled.std(0).mean() / pooled.abs().mean()).item())
    same = torch.randn(1, 5, 4, generator=g).expand(3, 5, 4)           # every utterance the same vector
    assert utterance_spread(same, torch.ones(3, 5, dtype=torch.bool)).item() == pytest.approx(0.0, abs=1e-6)
    # logged by the w2v-BERT part, from the top of the encoder
    torch.manual_seed(0)
    out = build_pretrain_model("tiny")(make_batch(torch.Generator().manual_seed(0)))
    assert out["utterance_spread"].item() > 0.01


def test_random_projection_targets_are_frozen_and_follow_the_input():
    from mslam.model.quantizer import RandomProjectionQuantizer
    rpq = RandomProjectionQuantizer(feat_dim=80, stride=4, groups=1, codes=32)
    assert not list(rpq.parameters()) and {"projection", "codebook"} <= set(rpq.state_dict())
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 43, 80, generator=g)
    ids = rpq.ids(feats, 10)
    assert ids.shape == (2, 10, 1) and ids.dtype == torch.long and int(ids.max()) < 32
    assert torch.equal(ids, RandomProjectionQuantizer(80, 4, 1, 32).ids(feats, 10))   # same seed, same targets
    # frame t depends on input frames 4t..4t+3 only
    changed = feats.clone()
    changed[:, 8:12] = torch.randn(2, 4, 80, generator=g)
    diff = (rpq.ids(changed, 10) != ids)[..., 0]
    assert not diff[:, [0, 1, 3, 4, 5]].any()
    # as the masked-prediction targets of pre-training: the model trains, the targets do not
    cfg = load_pretrain_config("tiny")
    cfg.objective.quantizer.mlm_targets = "random_projection"
    torch.manual_seed(0)
    model = build_pretrain_model(cfg)
    out = model(make_batch(torch.Generator().manual_seed(0)))
    out["loss"].backward()
    assert torch.isfinite(out["w2v_mlm"]) and model.target_quantizer.projection.grad is None


def test_target_statistics_against_their_definitions():
    from mslam.model.pretrain import frame_spread, majority_accuracy, target_usage
    ids = torch.tensor([[0, 5], [0, 5], [0, 6], [1, 7]])          # group 0: 3/4 code 0; group 1: 2/4 code 5
    assert majority_accuracy(ids).item() == pytest.approx((3 / 4 + 2 / 4) / 2)
    perplexity, share = target_usage(ids)
    entropy = lambda ps: -sum(p * torch.log(torch.tensor(p)) for p in ps)  # noqa: E731
    assert perplexity.item() == pytest.approx(float(torch.exp(entropy([.75, .25])) + torch.exp(entropy([.5, .25, .25]))))
    assert share.item() == pytest.approx((3 / 4 + 2 / 4) / 2)
    collapsed = torch.zeros(10, 1, dtype=torch.long)
    assert target_usage(collapsed)[0].item() == pytest.approx(1.0) and majority_accuracy(collapsed).item() == 1.0
    g = torch.Generator().manual_seed(0)
    top, valid = torch.randn(2, 6, 4, generator=g), torch.tensor([[1] * 6, [1] * 4 + [0] * 2]).bool()
    frames = top[valid]
    assert frame_spread(top, valid).item() == pytest.approx((frames.std(0).mean() / frames.abs().mean()).item())
    assert frame_spread(torch.ones(2, 6, 4), valid).item() == pytest.approx(0.0, abs=1e-6)


def test_code_prediction_is_ramped_in_and_the_rest_is_not():
    cfg = load_pretrain_config("tiny", ["objective.mlm_ramp.start_step=10", "objective.mlm_ramp.ramp_steps=10"])
    torch.manual_seed(0)
    model = build_pretrain_model(cfg)
    w = cfg.objective.weights.term_weights()
    for step, factor in ((5, 0.0), (15, 0.5), (40, 1.0)):
        torch.manual_seed(1)
        out = model(make_batch(torch.Generator().manual_seed(0)), step=step)
        expected = sum(w[k] * (factor if k in ("w2v_mlm", "tlm_speech") else 1.0) * out[k] for k in LOSSES["mslam-ctc"])
        assert torch.allclose(out["loss"], expected), step
