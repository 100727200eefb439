"""Manifests: what the pre-training sampler needs to know about each utterance or sentence, as plain
typed records (lhotse-style), built once per data dir and cached as JSON lines.

A speech record carries its language, its length in feature frames (10 ms) and where its audio or
features are; a text record carries its language, its length in characters and the sentence itself.
Lengths come from the cheapest table that knows them: utt2num_frames (dumped features), segments,
utt2dur, or utt2num_samples at the sample rate in the audio file's header.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import soundfile

from mslam.data.audio import SAMPLE_RATE
from mslam.data.kaldi import DataDir, DataDirError, Segment, Utterance, atomic_write_text
from mslam.data.tokenizer import normalize_text

MANIFEST_VERSION = 1
UNDETERMINED_LANG = "und"  # BCP-47 for "unknown": a data dir without utt2lang is one language


@dataclass
class Record:
    id: str
    lang: str
    length: int                                   # feature frames (speech) or characters (text)
    text: str | None = None                       # transcript (paired) or the sentence (text)
    wav: str | None = None                        # wav.scp entry of its recording
    segment: tuple[str, float, float] | None = None
    feats: str | None = None                      # feats.scp entry

    def utterance(self) -> Utterance:
        """The data-dir view of a speech record, for `load_features`."""
        segment = Segment(*self.segment) if self.segment else None
        return Utterance(id=self.id, wav=self.wav, segment=segment, text=self.text, lang=self.lang,
                         feats=self.feats)


def _frames_of_seconds(seconds: float) -> int:
    # Imported here: mslam.data.features imports torch, which the shard reader (mslam.data.shards,
    # a Record per line) does not need; a sampler process stays at numpy's size.
    from mslam.data.features import FbankConfig, num_frames
    return num_frames(int(round(seconds * SAMPLE_RATE)), FbankConfig())


def _file_sample_rate(entry: str | None, utt: str) -> int:
    """The rate in a plain audio file's header; pipes and arks are assumed to be 16 kHz."""
    if entry and not entry.rstrip().endswith("|") and ".ark:" not in entry and os.path.isfile(entry.strip()):
        try:
            return soundfile.info(entry.strip()).samplerate
        except soundfile.LibsndfileError as e:
            raise DataDirError(f"utterance '{utt}': {entry.strip()} has no readable audio header ({e})") from None
    return SAMPLE_RATE


def _utterance_frames(d: DataDir, utt: Utterance) -> int:
    t = d.tables
    if utt.id in t.get("utt2num_frames", {}):
        return int(t["utt2num_frames"][utt.id])
    if utt.segment is not None:
        return _frames_of_seconds(utt.segment.end - utt.segment.start)
    if utt.id in t.get("utt2dur", {}):
        return _frames_of_seconds(float(t["utt2dur"][utt.id]))
    if utt.num_samples is not None:
        return _frames_of_seconds(utt.num_samples / _file_sample_rate(utt.wav, utt.id))
    raise DataDirError(f"{d.path}: no length for utterance '{utt.id}'; the sampler needs one of utt2num_frames, "
                       "segments, utt2dur or utt2num_samples (python -m mslam.bin.data_dir can add them)")


def _fingerprint(data_dir: Path, with_text: bool) -> str:
    """Changes whenever a table of the data dir changes (name, size or modification time)."""
    h = hashlib.sha256(f"{MANIFEST_VERSION} {data_dir.resolve()} {with_text}".encode())
    for p in sorted(data_dir.iterdir()):
        if p.is_file() and not p.name.startswith("."):
            st = p.stat()
            h.update(f"{p.name} {st.st_size} {st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def speech_manifest(data_dir: str | os.PathLike, *, with_text: bool = False,
                    cache_dir: str | os.PathLike | None = None) -> list[Record]:
    """Records of a Kaldi data dir (with transcripts if `with_text`: the paired source), cached."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataDirError(f"{data_dir}: data dir not found")
    cache = None
    if cache_dir is not None:
        key = _fingerprint(data_dir, with_text)
        cache = Path(cache_dir) / f"{data_dir.parent.name}_{data_dir.name}.{key}.jsonl"
        if cache.is_file():
            with open(cache, encoding="utf-8") as f:
                return [Record(**{**r, "segment": tuple(r["segment"]) if r["segment"] else None})
                        for r in map(json.loads, f)]
    d = DataDir(data_dir).validate()
    if with_text and "text" not in d.tables:
        raise DataDirError(f"{data_dir}: the paired source needs transcripts (a 'text' file)")
    records = []
    for utt in d:
        seg = (utt.segment.recording, utt.segment.start, utt.segment.end) if utt.segment else None
        text = normalize_text(utt.text) if with_text else None
        records.append(Record(utt.id, utt.lang or UNDETERMINED_LANG, _utterance_frames(d, utt), text,
                              utt.wav, seg, utt.feats))
    if cache is not None:
        atomic_write_text(cache, "".join(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in records))
    return records


def text_manifest(shard_dir: str | os.PathLike) -> list[Record]:
    """Records of a directory of text shards `<lang>.txt`, one sentence per line (empty lines skipped)."""
    shard_dir = Path(shard_dir)
    shards = sorted(shard_dir.glob("*.txt"))
    if not shards:
        raise DataDirError(f"{shard_dir}: no text shards (<lang>.txt, one sentence per line)")
    return [r for shard in shards for r in iter_text_shard(shard)]


def iter_text_shard(shard: Path) -> Iterator[Record]:
    """The records of one text shard, a line at a time (shard sets are written from this stream)."""
    with open(shard, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = normalize_text(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise DataDirError(f"{shard}:{lineno}: not valid UTF-8") from None
            if line:
                yield Record(f"{shard.stem}:{lineno}", shard.stem, len(line), line)
