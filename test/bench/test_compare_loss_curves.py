"""bench/compare_loss_curves.py's verdict: two paths agree on a loss term when their difference of
tail means is within twice its standard error over seeds, and differ when it is not."""
from __future__ import annotations

import importlib.util
import random
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "compare_loss_curves.py"


def load():
    spec = importlib.util.spec_from_file_location("compare_loss_curves", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def runs(level: float, seeds: int, rng: random.Random) -> list[list[dict]]:
    """Logs of 200 steps: a falling curve, a per-seed offset (sd 0.1) and step noise (sd 0.2)."""
    out = []
    for _ in range(seeds):
        offset = rng.gauss(0, 0.1)
        out.append([{"step": s, "ctc": level + 5 / s + offset + rng.gauss(0, 0.2)} for s in range(1, 201)])
    return out


def test_same_process_agrees_and_a_shift_beyond_the_seed_spread_differs():
    compare, rng = load(), random.Random(0)
    base = runs(2.0, 3, rng)
    same = compare.verdict(base, runs(2.0, 3, rng), "ctc")
    assert same[3] == "agree" and abs(same[1] - same[0]) <= 2 * same[2]
    shifted = compare.verdict(base, runs(2.6, 3, rng), "ctc")
    assert shifted[3] == "differ" and shifted[1] - shifted[0] > 0.4
    assert compare.verdict(base, runs(2.0, 3, rng), "w2v_mlm") is None  # a term the runs do not log
