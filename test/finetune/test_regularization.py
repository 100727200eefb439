"""The fine-tuning regularisation schedule: SpecAugment and every dropout of the model are off up to
`regularization.start_step`, then grow linearly to their configured strength."""
from __future__ import annotations

import pytest
import torch

from mslam.config import load_config
from mslam.data.finetune_data import FinetuneBatch
from mslam.model.decoders import TransformerDecoderConfig
from mslam.model.encoder import ModelConfig
from mslam.model.finetune import (FinetuneModel, HeadConfig, RegularizationConfig, SpecAugmentConfig, dropout_rates,
                                  spec_augment)
from testlib import TINY_MODEL


def test_strength_is_off_then_a_linear_ramp():
    ramp = RegularizationConfig(start_step=10, ramp_steps=4)
    assert [ramp.at(s) for s in (1, 10, 11, 12, 14, 100)] == [0.0, 0.0, 0.25, 0.5, 1.0, 1.0]
    assert RegularizationConfig().at(1) == 1.0                      # default: from the start
    assert RegularizationConfig(start_step=5).at(6) == 1.0          # no ramp: switched on


def st_model(reg: RegularizationConfig) -> FinetuneModel:
    model = load_config({**TINY_MODEL, "encoder": {**TINY_MODEL["encoder"], "dropout": 0.2}}, ModelConfig)
    head = HeadConfig(decoder=TransformerDecoderConfig(layers=1, d_model=64, heads=4, ffn_dim=128, dropout=0.3))
    return FinetuneModel("st", model, head, 20, spec_augment=SpecAugmentConfig(), regularization=reg)


def test_every_dropout_follows_the_schedule():
    model = st_model(RegularizationConfig(start_step=10, ramp_steps=10))
    rates = dropout_rates(model)
    # the encoder's (Conformer modules, front ends) and the decoder's (embeddings, layers, attention)
    assert {r for _, _, r in rates} == {0.2, 0.3}
    assert len(rates) > 10
    torch.manual_seed(0)
    batch = FinetuneBatch(feats=torch.randn(2, 60, 80), feat_lens=torch.tensor([60, 45]),
                          targets=torch.tensor([[5, 6, 7], [8, 9, 0]]), target_lens=torch.tensor([3, 2]))
    model.train()

    def loss_twice(step):
        return [model(batch, step)["loss"].item() for _ in range(2)]

    first, second = loss_twice(5)
    assert first == second                          # no dropout, no SpecAugment: deterministic
    assert all(getattr(m, a) == 0.0 for m, a, _ in rates)
    first, second = loss_twice(15)
    assert first != second
    assert all(getattr(m, a) == pytest.approx(0.5 * r) for m, a, r in rates)
    loss_twice(25)
    assert all(getattr(m, a) == pytest.approx(r) for m, a, r in rates)
    model.eval()                                    # evaluation is untouched by the schedule
    assert model(batch)["loss"].item() == model(batch)["loss"].item()


def test_spec_augment_widths_scale_with_strength():
    feats, lens = torch.randn(4, 200, 80), torch.tensor([200, 200, 150, 100])
    cfg = SpecAugmentConfig(freq_masks=2, freq_width=27, time_masks=2, time_width=0.05)
    changed = {}
    for strength in (0.1, 1.0):
        torch.manual_seed(0)
        changed[strength] = (spec_augment(feats, lens, cfg, strength) != feats).float().mean().item()
    assert 0 < changed[0.1] < changed[1.0] / 3
