"""Convert Kaldi data dirs or text shard dirs into a shard set that pre-training reads lazily
(data.<source>.format: shards), the manifest format for corpora too large to hold in memory.

    python -m mslam.bin.make_shards --kind speech --out data/shards/speech_train data/speech/train [...]
    python -m mslam.bin.make_shards --kind text --out data/shards/text_train data/text_shards/train
    python -m mslam.bin.make_shards --kind paired --out data/shards/asr_train data/asr/train

Speech and paired inputs are Kaldi data dirs (with a length table: utt2num_frames, segments, utt2dur
or utt2num_samples; paired ones with `text`); text inputs are directories of `<lang>.txt`. A finished
set made from the same inputs (names, sizes, times) and options is not written again, so it can be a
resumable recipe stage. The format: mslam/data/shards.py.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from mslam.data.kaldi import DataDirError
from mslam.data.manifest import _fingerprint, iter_text_shard, speech_manifest
from mslam.data.shards import KINDS, finished_index, write_shards

log = logging.getLogger("mslam.make_shards")


def record_stream(kind: str, inputs: list[Path]):
    """A function giving the inputs' records afresh (write_shards reads them twice)."""
    if kind == "text":
        shards = []
        for d in inputs:
            found = sorted(d.glob("*.txt"))
            if not found:
                raise DataDirError(f"{d}: no text shards (<lang>.txt, one sentence per line)")
            shards += found
        return lambda: (r for shard in shards for r in iter_text_shard(shard))
    records = [r for d in inputs for r in speech_manifest(d, with_text=kind == "paired")]
    if kind == "paired":  # an empty transcript would teach CTC to emit nothing
        empty = [r.id for r in records if not r.text]
        if empty:
            log.warning("dropped %d utterance(s) with an empty transcript (first: %s)", len(empty), empty[0])
            records = [r for r in records if r.text]
    return lambda: records


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", help="Kaldi data dirs (speech, paired) or dirs of <lang>.txt (text)")
    p.add_argument("--kind", choices=sorted(KINDS), required=True)
    p.add_argument("--out", required=True, help="shard set directory to write")
    p.add_argument("--shard-size", type=int, default=10000, help="utterances per shard at most (default 10000)")
    p.add_argument("--buckets", type=int, default=10, help="length buckets per language (default 10)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    inputs = [Path(d) for d in args.inputs]
    try:
        for d in inputs:
            if not d.is_dir():
                raise DataDirError(f"{d}: directory not found")
        key = {"kind": args.kind, "shard_size": args.shard_size, "buckets": args.buckets,
               "dirs": {str(d): _fingerprint(d, args.kind == "paired") for d in inputs}}
        index = finished_index(args.out, key)
        if index is None:
            index = write_shards(args.out, args.kind, record_stream(args.kind, inputs), shard_size=args.shard_size,
                                 buckets=args.buckets, inputs=key)
            verb = "wrote"
        else:
            verb = "already done:"
    except (DataDirError, ValueError) as e:
        print(f"make_shards: {e}", file=sys.stderr)
        return 1
    langs = index["langs"]
    n = sum(v["utterances"] for v in langs.values())
    shards = sum(len(b["shards"]) for v in langs.values() for b in v["buckets"])
    print(f"make_shards: {verb} {args.out}: {n} utterances of {len(langs)} language(s) in {shards} shard(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
