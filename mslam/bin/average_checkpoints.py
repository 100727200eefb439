"""Average the model parameters of the last K intact checkpoints of a run.

    python -m mslam.bin.average_checkpoints --exp-dir exp/pretrain --last 5 --out exp/pretrain/avg5.pt

The output holds {"model": averaged state dict, "steps": [...], "config": ...} (loadable by
fine-tuning like a checkpoint's "model"). Floating-point tensors are averaged in float64 and cast
back; integer buffers (counters) are taken from the newest checkpoint.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import torch

from mslam.train.checkpoint import average_checkpoints, list_checkpoints, verify_checkpoint

log = logging.getLogger("mslam.average")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", required=True, help="a pre-training output dir (holds checkpoints/)")
    p.add_argument("--last", type=int, default=5, help="how many of the newest intact checkpoints")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    intact = []
    for path in list_checkpoints(args.exp_dir):
        problem = verify_checkpoint(path)
        if problem:
            log.warning("skipping %s: %s", path, problem)
        else:
            intact.append(path)
    if not intact:
        print(f"average_checkpoints: error: no intact checkpoint in {args.exp_dir}/checkpoints", file=sys.stderr)
        return 1
    chosen = intact[-args.last:]
    if len(chosen) < args.last:
        log.warning("only %d intact checkpoint(s); averaging those", len(chosen))
    steps = [int(p.name.split("-")[-1]) for p in chosen]
    model, config = average_checkpoints(chosen)
    state = {"model": model, "steps": steps, "config": config}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, out)
    print(f"average_checkpoints: averaged steps {steps} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
