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
