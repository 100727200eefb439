import math

import pytest
import torch

from mslam.train.schedule import OptimConfig, build_optimizer, lr_factor


def test_lr_factor_warms_up_linearly_then_decays_as_inverse_sqrt():
    w = 40000
    assert lr_factor(1, w) == pytest.approx(1 / w)
    assert lr_factor(w // 2, w) == pytest.approx(0.5)
    assert lr_factor(w, w) == pytest.approx(1.0)
    assert lr_factor(4 * w, w) == pytest.approx(0.5)
    assert lr_factor(100 * w, w) == pytest.approx(0.1)
    steps = range(1, 3 * w, 997)
    values = [lr_factor(s, w) for s in steps]
    assert max(values) <= 1.0
    peak = max(range(len(values)), key=values.__getitem__)
    assert all(a < b for a, b in zip(values[:peak], values[1:peak + 1]))
    assert all(a > b for a, b in zip(values[peak:], values[peak + 1:]))


def test_optimizer_lr_follows_the_schedule_per_step():
    model = torch.nn.Linear(3, 2)
    cfg = OptimConfig(peak_lr=6e-4, warmup_steps=4)
    opt, sched = build_optimizer(model, cfg)
    seen = []
    for _ in range(16):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    expected = [6e-4 * min(s / 4, math.sqrt(4 / s)) for s in range(1, 17)]
    assert seen == pytest.approx(expected)
    assert isinstance(opt, torch.optim.Adam)


def test_bad_schedule_settings_are_rejected():
    with pytest.raises(ValueError, match="warmup_steps"):
        OptimConfig(warmup_steps=0)
