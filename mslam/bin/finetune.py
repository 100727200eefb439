"""Fine-tune a pre-trained mSLAM encoder (or train from scratch) for ST, ASR, intent or LangID.

    python -m mslam.bin.finetune --task st --config conf/finetune/st.yaml --init exp/pretrain \
        --output-dir exp/st [--resume] [--set data.root=data trainer.max_steps=2000 ...]
    python -m mslam.bin.finetune --task asr --output-dir exp/asr_scratch ...   # no --init: from scratch

--init takes a pre-training run dir (its newest intact checkpoint), a checkpoint dir, or a .pt file
holding {"model", "config"}; the encoder's architecture comes from that checkpoint's config. Without
--config the shipped config of the task is used (mslam/conf/finetune/<task>.yaml). Writes
OUTPUT_DIR/config.yaml, tokens/, checkpoints/, train.jsonl, dev.jsonl, tensorboard/ and final.pt
(the mean of the best checkpoints on dev), which `mslam.bin.decode` reads.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from mslam.config import ConfigError
from mslam.data.audio import AudioError
from mslam.data.kaldi import DataDirError
from mslam.tasks.finetune import finetune, load_finetune_config, prepare
from mslam.train.checkpoint import CheckpointError
from mslam.train.trainer import NonFiniteLossError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=("st", "asr", "intent", "langid"), help="overrides the config's task")
    p.add_argument("--config", help="YAML file or shipped config name (default: the task's shipped config)")
    p.add_argument("--init", help="pre-training run dir, checkpoint dir or .pt (omit: train from scratch)")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--resume", action="store_true", help="continue from the newest intact checkpoint")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override config keys, e.g. trainer.max_steps=100 data.root=data (values are YAML)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    p.add_argument("--targets-only", action="store_true",
                   help="only build the target vocabulary (OUTPUT_DIR/tokens) and stop (a recipe's stage)")
    args = p.parse_args(argv)
    if not args.task and not args.config:
        p.error("give --task or --config")
    rank = int(os.environ.get("RANK", 0))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format=f"%(asctime)s [rank {rank}] %(levelname)s %(message)s", datefmt="%H:%M:%S")
    overrides = list(args.set)
    if args.task:
        overrides.append(f"task={args.task}")
    if args.init:
        overrides.append(f"init={args.init}")
    try:
        cfg = load_finetune_config(args.config or args.task, overrides)
        if args.targets_only:
            _, targets, _ = prepare(cfg, Path(args.output_dir))
            print(f"finetune: {len(targets)} targets in {targets.path}")
            return 0
        path = finetune(cfg, args.output_dir, resume=args.resume, progress_bar=not args.no_progress)
    except (ConfigError, DataDirError, AudioError, CheckpointError, NonFiniteLossError) as e:
        print(f"finetune: error: {e}", file=sys.stderr)
        return 1
    print(f"finetune: done; final model {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
