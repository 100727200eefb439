"""Distinct batch shapes per epoch of a pre-training corpus, with and without static shapes.

    cd egs/mini && python ../../bench/static_shapes.py --config mini [--set data.shape_growth=1.5]

An epoch here = as many steps as it takes to draw as many speech utterances as the speech source
holds. Shapes come from the manifests' lengths (no audio is read), so this runs in seconds.
torch.compile (dynamic=False) compiles the model once per distinct (speech, text, paired) shape
combination and once more per shape of each part it sees for the first time.
"""
from __future__ import annotations

import argparse
import tempfile

from mslam.data.pretrain_data import PretrainBatches
from mslam.data.tokenizer import CharTokenizer
from mslam.tasks.pretrain import load_pretrain_config


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="mini")
    p.add_argument("--set", nargs="*", default=[])
    p.add_argument("--steps", type=int, default=0, help="steps to look at (0: one epoch of the speech source)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        rows = []
        for static in (False, True):
            cfg = load_pretrain_config(args.config, [*args.set, f"data.static_shapes={str(static).lower()}"])
            data = PretrainBatches(cfg.data, CharTokenizer.load(cfg.data.path(cfg.data.vocab)), seed=0,
                                   cache_dir=cache)
            steps = args.steps
            if not steps:  # one epoch of speech: items / mean items per step (from 50 steps)
                per_step = sum(len(data.plan(s)["speech"][0]) for s in range(1, 51)) / 50
                steps = int(len(data.records["speech"]) / per_step)
            per_part: dict[str, set] = {}
            combos = set()
            padded = real = 0
            for s in range(1, steps + 1):
                shapes = data.shapes(s)
                combos.add(tuple(sorted(shapes.items())))
                for name, shape in shapes.items():
                    per_part.setdefault(name, set()).add(shape)
                plan = data.plan(s)["speech"][0]
                real += int(sum(data.samplers["speech"].lengths[i] for i in plan))
                padded += shapes["speech"][0] * shapes["speech"][1]
            rows.append((static, steps, combos, per_part, real / padded))
        for static, steps, combos, per_part, fill in rows:
            parts = ", ".join(f"{k} {len(v)}" for k, v in per_part.items())
            print(f"static_shapes={static}: {steps} steps; distinct step shapes {len(combos)}; per part: {parts}; "
                  f"speech frames real / padded {fill:.2f}")


if __name__ == "__main__":
    main()
