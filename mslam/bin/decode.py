"""Decode a data dir with a fine-tuned model: translations, transcripts or class labels.

    python -m mslam.bin.decode --exp-dir exp/st --data data/st/test --out-dir exp/st/decode_test
    python -m mslam.bin.decode --exp-dir exp/st --data data/mt/test --text-input --out-dir exp/st/zeroshot_test

Writes OUT_DIR/hyp (Kaldi text format: `<utt-id> <hypothesis>`, one per utterance of the data dir)
and OUT_DIR/decode.json (model, settings, time). --text-input feeds each utterance's `text` (source
sentence) through the character front end instead of speech: MT, or zero-shot text translation
with an ST model fine-tuned on speech only. Search settings default to the run's `decode` section.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from mslam.config import ConfigError
from mslam.data.audio import AudioError
from mslam.data.features import CMVNStats
from mslam.data.finetune_data import BatchConfig, collate, fixed_batches, speech_examples, text_examples
from mslam.data.kaldi import DataDirError, atomic_write_text, write_table
from mslam.tasks.finetune import encoder_chars, load_finetuned
from mslam.train.checkpoint import CheckpointError


def decode(exp_dir, data, out_dir, *, checkpoint=None, text_input=False, method=None, beam=None,
           length_penalty=None, max_len=None, batch_frames=None, device="cpu", progress=True) -> Path:
    t0 = time.time()
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: this machine has no usable GPU; use --device cpu "
                          "(in a recipe: --ngpu auto, which uses the GPUs there are, or --ngpu 0)")
    run = load_finetuned(exp_dir, checkpoint, device)
    cfg, dec = run.cfg, run.cfg.decode
    dec.method = method or dec.method
    dec.beam = beam or dec.beam
    dec.length_penalty = dec.length_penalty if length_penalty is None else length_penalty
    dec.max_len = max_len or dec.max_len
    if text_input:
        if cfg.task != "st":
            raise ConfigError("--text-input: only an st model takes text input")
        chars = encoder_chars(run.exp_dir)
        examples = text_examples(data, None, None, lambda s, u: chars.encode(s, utt=u))
    else:
        examples = speech_examples(data, None, None)
    batching = BatchConfig(batch_frames=batch_frames or cfg.data.batch.batch_frames)
    cmvn = CMVNStats.load(cfg.data.path(cfg.data.cmvn)) if cfg.data.cmvn and not text_input else None
    hyps = {}
    batches = fixed_batches(examples, batching)
    with torch.inference_mode():
        for batch in tqdm(batches, desc=f"decode {Path(data).name}", disable=not progress, mininterval=1.0):
            inputs = collate([], batch) if text_input else collate(batch, cmvn=cmvn)
            for e, out in zip(batch, run.model.decode(inputs.to(device), dec)):
                hyps[e.id] = run.targets.decode(out)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "hyp", sorted(hyps.items()))
    info = {"exp_dir": str(exp_dir), "checkpoint": str(checkpoint or Path(exp_dir) / "final.pt"), "data": str(data),
            "text_input": text_input, "task": cfg.task, "decode": vars(dec), "utterances": len(hyps),
            "seconds": round(time.time() - t0, 2)}
    atomic_write_text(out / "decode.json", json.dumps(info, indent=1) + "\n")
    return out / "hyp"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", required=True, help="a fine-tuning output dir")
    p.add_argument("--data", required=True, help="Kaldi data dir to decode")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--checkpoint", help="a checkpoint dir or .pt instead of EXP_DIR/final.pt")
    p.add_argument("--text-input", action="store_true", help="translate the data dir's `text` (st models)")
    p.add_argument("--method", choices=("beam", "greedy"))
    p.add_argument("--beam", type=int)
    p.add_argument("--length-penalty", type=float, help="alpha of ((5+|y|)/6)^alpha (translation)")
    p.add_argument("--max-len", type=int, help="translation: at most this many tokens per hypothesis (default 256)")
    p.add_argument("--batch-frames", type=int, help="padded frames per batch (default: the training budget)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        hyp = decode(args.exp_dir, args.data, args.out_dir, checkpoint=args.checkpoint, text_input=args.text_input,
                     method=args.method, beam=args.beam, length_penalty=args.length_penalty,
                     max_len=args.max_len, batch_frames=args.batch_frames, device=args.device, progress=not args.no_progress)
    except (ConfigError, DataDirError, AudioError, CheckpointError) as e:
        print(f"decode: error: {e}", file=sys.stderr)
        return 1
    print(f"decode: wrote {hyp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
