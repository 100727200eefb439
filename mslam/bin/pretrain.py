"""Pre-train an mSLAM encoder on speech, text and paired data.

    python -m mslam.bin.pretrain --config conf/pretrain.yaml --output-dir exp/pretrain [--resume]
        [--set data.root=data trainer.max_steps=1000 ...]
    torchrun --nproc-per-node 8 -m mslam.bin.pretrain --config ... --output-dir ...

Writes OUTPUT_DIR/config.yaml (the resolved config), checkpoints/step-N/, train.jsonl (one JSON
object per logged step) and tensorboard/. `--resume` continues from the newest intact checkpoint
(or starts afresh when there is none yet, so a recipe can always pass it).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from mslam.config import ConfigError
from mslam.data.audio import AudioError
from mslam.data.kaldi import DataDirError
from mslam.tasks.pretrain import load_pretrain_config
from mslam.train.checkpoint import CheckpointError
from mslam.train.trainer import NonFiniteLossError, pretrain


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="YAML file, or the name of a shipped config (mini, mslam_0.6b)")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--resume", action="store_true", help="continue from the newest intact checkpoint")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override config keys, e.g. trainer.max_steps=100 data.root=data (values are YAML)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    args = p.parse_args(argv)
    rank = int(os.environ.get("RANK", 0))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format=f"%(asctime)s [rank {rank}] %(levelname)s %(message)s", datefmt="%H:%M:%S")
    try:
        cfg = load_pretrain_config(args.config, args.set)
        pretrain(cfg, args.output_dir, resume=args.resume, progress_bar=not args.no_progress)
    except (ConfigError, DataDirError, AudioError, CheckpointError, NonFiniteLossError) as e:
        print(f"pretrain: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
