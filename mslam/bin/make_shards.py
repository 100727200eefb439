"""Convert Kaldi data dirs or text shard dirs into a shard set that pre-training reads lazily
(data.<source>.format: shards), the manifest format for corpora too large to hold in memory.

    python -m mslam.bin.make_shards --kind speech --out data/shards/speech_train data/speech/train [...]
    python -m mslam.bin.make_shards --kind text --out data/shards/text_train data/text_shards/train
    python -m mslam.bin.make_shards --kind paired --out data/shards/asr_train data/asr/train

Speech and paired inputs are Kaldi data dirs (with a length table: utt2num_frames, segments, utt2dur
or utt2num_samples; paired ones with `text`); text inputs are directories of `<lang>.txt`. A finished
set made from the same inputs (names, sizes, times) and options is not written again, so it can be a
resumable recipe stage. The format: mslam/data/shards.py. Data dirs are read as streams (their tables
in step, a line at a time) with the checks DataDir makes: memory does not grow with the utterances.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable, Iterator

from mslam.data.corpora.common import iter_data_dir, table_names
from mslam.data.kaldi import DataDirError
from mslam.data.manifest import (UNDETERMINED_LANG, Record, _file_sample_rate, _fingerprint, _frames_of_seconds,
                                 iter_text_shard)
from mslam.data.shards import KINDS, finished_index, write_shards
from mslam.data.tokenizer import normalize_text

log = logging.getLogger("mslam.make_shards")


def speech_records(data_dir: Path, with_text: bool) -> Iterator[Record]:
    """The records speech_manifest makes of a Kaldi data dir, streamed: its tables are read in step
    (mslam.data.corpora.common.iter_data_dir), so memory does not grow with the utterances."""
    names = set(table_names(data_dir))
    if with_text and "text" not in names:
        raise DataDirError(f"{data_dir}: the paired source needs transcripts (a 'text' file)")
    for utt, row in iter_data_dir(data_dir):
        segment = None
        if "segments" in row:
            rec, start, end = row["segments"][1].split()
            segment = (rec, float(start), float(end))
        wav = row["wav.scp"][1] if "wav.scp" in row else None
        text = normalize_text(row["text"][1]) if with_text and "text" in row else None
        lang = row["utt2lang"][1] if "utt2lang" in row else UNDETERMINED_LANG
        feats = row["feats.scp"][1] if "feats.scp" in row else None
        yield Record(utt, lang, _frames(data_dir, utt, row, segment, wav), text, wav, segment, feats)


def _frames(data_dir: Path, utt: str, row: dict, segment: tuple | None, wav: str | None) -> int:
    """Length in frames from the cheapest table that has it, as speech_manifest takes it."""
    if "utt2num_frames" in row:
        return int(row["utt2num_frames"][1])
    if segment is not None:
        return _frames_of_seconds(segment[2] - segment[1])
    if "utt2dur" in row:
        return _frames_of_seconds(float(row["utt2dur"][1]))
    if "utt2num_samples" in row:
        return _frames_of_seconds(int(row["utt2num_samples"][1]) / _file_sample_rate(wav, utt))
    raise DataDirError(f"{data_dir}: no length for utterance '{utt}'; the sampler needs one of utt2num_frames, "
                       "segments, utt2dur or utt2num_samples (python -m mslam.bin.data_dir can add them)")


def record_stream(kind: str, inputs: list[Path]) -> Callable[[], Iterator[Record]]:
    """A function giving the inputs' records afresh (write_shards reads them twice). Nothing is held:
    each call reads the inputs again, a line at a time."""
    if kind == "text":
        shards = []
        for d in inputs:
            found = sorted(d.glob("*.txt"))
            if not found:
                raise DataDirError(f"{d}: no text shards (<lang>.txt, one sentence per line)")
            shards += found
        return lambda: (r for shard in shards for r in iter_text_shard(shard))
    warned = False

    def records() -> Iterator[Record]:
        nonlocal warned
        empty, first = 0, None
        for d in inputs:
            for r in speech_records(d, with_text=kind == "paired"):
                if kind == "paired" and not r.text:   # an empty transcript would teach CTC to emit nothing
                    empty, first = empty + 1, first or r.id
                    continue
                yield r
        if empty and not warned:
            log.warning("dropped %d utterance(s) with an empty transcript (first: %s)", empty, first)
            warned = True   # once: write_shards reads the records twice
    return records


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
