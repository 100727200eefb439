"""Fine-tuning data: labelled utterances (or sentences) with their targets already encoded, cut into
length-sorted batches under a frame budget, shuffled per epoch.

Step s of a run is a pure function of (seed, s): epoch e = (s - 1) // batches_per_epoch takes the
batches in the order of a permutation seeded with (seed, e). Joint ST+MT adds to every step as many
MT sentences as the step has utterances, drawn with a generator seeded with (seed, s). So a resumed
run sees exactly the data an uninterrupted one would.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from mslam.data.features import CMVNStats, load_features
from mslam.data.kaldi import DataDir, DataDirError, read_table
from mslam.data.manifest import UNDETERMINED_LANG, Record, speech_manifest
from mslam.data.pretrain_data import StepBatch
from mslam.data.tokenizer import PAD_ID

log = logging.getLogger("mslam.data")

# The table that holds each task's target, unless the config names another.
TARGET_TABLES = {"st": "text.en", "asr": "text", "intent": "utt2intent", "langid": "utt2lang"}
SOURCE_TABLE = "text"  # the source sentence of text-to-text (MT) examples


@dataclass
class Example:
    id: str
    lang: str
    length: int                          # feature frames (speech) or characters (text input)
    target: list[int] | int | None       # token ids, or a class index; None when decoding
    record: Optional[Record] = None      # speech: where the audio or features are
    source: Optional[list[int]] = None   # text input: character ids
    transcript: Optional[list[int]] = None  # speech: the source transcript's character ids (auxiliary CTC)


@dataclass
class FinetuneBatch:
    """A batch of speech (feats) or text (chars) input with token or class targets; parts may be None."""
    feats: Optional[torch.Tensor] = None        # [B, T, 80]
    feat_lens: Optional[torch.Tensor] = None
    targets: Optional[torch.Tensor] = None      # [B, L] token ids (PAD-padded) or [B] class ids
    target_lens: Optional[torch.Tensor] = None
    text: Optional[torch.Tensor] = None         # MT source characters [B, L]
    text_lens: Optional[torch.Tensor] = None
    text_targets: Optional[torch.Tensor] = None
    text_target_lens: Optional[torch.Tensor] = None
    transcripts: Optional[torch.Tensor] = None  # [B, L] source transcript characters of the speech
    transcript_lens: Optional[torch.Tensor] = None

    def to(self, device) -> "FinetuneBatch":
        return FinetuneBatch(**{f.name: None if getattr(self, f.name) is None
                                else getattr(self, f.name).to(device, non_blocking=True) for f in fields(self)})

    def sizes(self) -> dict[str, float]:
        return {"frames": float(self.feat_lens.sum()) if self.feat_lens is not None else 0.0,
                "chars": float(self.text_lens.sum()) if self.text_lens is not None else 0.0}


@dataclass
class BatchConfig:
    batch_frames: int = 20000    # padded feature frames per step, all processes together (our choice)
    batch_sequences: int = 0     # at most this many utterances per step (0: no limit); paper: 256 for ASR
    max_frames: int = 3000       # longer utterances are dropped with a warning (memory guard; 30 s)
    min_frames: int = 7          # the shortest input the front end accepts


@dataclass
class CropConfig:
    """Training on random excerpts: each utterance longer than `min_frames` is, with probability
    `prob`, cut to a random window of `min_frames`..`max_frames` frames. For LangID: a model that has
    only heard whole utterances identifies languages by the words it memorised and fails on short
    words it never heard alone; excerpts make it listen to how a language sounds."""
    prob: float = 0.0            # 0: whole utterances (every other task: the target needs all of it)
    min_frames: int = 50         # 0.5 s at 10 ms frames
    max_frames: int = 150

    def __post_init__(self):
        if not 0 <= self.prob <= 1 or not 7 <= self.min_frames <= self.max_frames:
            raise ValueError("crop: need 0 <= prob <= 1 and 7 <= min_frames <= max_frames")

    def window(self, length: int, rng: np.random.Generator) -> tuple[int, int]:
        """(start, end) of the excerpt of an utterance of `length` frames."""
        if self.prob == 0 or length <= self.min_frames or rng.random() >= self.prob:
            return 0, length
        size = int(rng.integers(self.min_frames, min(self.max_frames, length) + 1))
        start = int(rng.integers(0, length - size + 1))
        return start, start + size


# ----------------------------------------------------------------------------- examples
def speech_examples(data_dir: str | os.PathLike, target_table: str | None,
                    encode: Callable[[str, str], list[int] | int] | None, *,
                    cache_dir: str | os.PathLike | None = None,
                    encode_transcript: Callable[[str, str], list[int]] | None = None) -> list[Example]:
    """One Example per utterance of a data dir, its target encoded (`encode(value, utt_id)`), and
    with `encode_transcript` its source transcript (`text`) too. An utterance whose text target or
    transcript is empty is dropped, counted in a warning: it would teach the model to emit nothing."""
    d = Path(data_dir)
    records = speech_manifest(d, cache_dir=cache_dir)
    targets = read_target_table(d, target_table) if target_table else {}
    transcripts = read_target_table(d, SOURCE_TABLE) if encode_transcript else {}
    out, empty = [], []
    for r in records:
        target = transcript = None
        if target_table:
            if r.id not in targets:
                raise DataDirError(f"{d / target_table}: no entry for utterance '{r.id}'")
            if target_table.startswith("text") and not targets[r.id].strip():
                empty.append(r.id)
                continue
            target = encode(targets[r.id], r.id)
        if encode_transcript:
            if r.id not in transcripts:
                raise DataDirError(f"{d / SOURCE_TABLE}: no transcript for utterance '{r.id}'")
            if not transcripts[r.id].strip():
                empty.append(r.id)
                continue
            transcript = encode_transcript(transcripts[r.id], r.id)
        out.append(Example(r.id, r.lang, r.length, target, record=r, transcript=transcript))
    if empty:
        log.warning("%s: dropped %d of %d utterances with an empty transcript or translation (first: %s)",
                    d, len(empty), len(records), empty[0])
    return out


def text_examples(data_dir: str | os.PathLike, target_table: str | None,
                  encode: Callable[[str, str], list[int]] | None,
                  encode_source: Callable[[str, str], list[int]]) -> list[Example]:
    """Text-to-text examples (source sentence in `text`, target in e.g. `text.en`) of a data dir."""
    d = DataDir(data_dir).validate()
    if SOURCE_TABLE not in d.tables:
        raise DataDirError(f"{d.path}: text input needs the source sentences in '{SOURCE_TABLE}'")
    targets = read_target_table(Path(data_dir), target_table) if target_table else {}
    out = []
    for utt in d:
        source = encode_source(utt.text, utt.id)
        if not source:
            raise DataDirError(f"{d.path / SOURCE_TABLE}: utterance '{utt.id}' has an empty source sentence")
        target = encode(targets[utt.id], utt.id) if target_table else None
        out.append(Example(utt.id, utt.lang or UNDETERMINED_LANG, len(source), target, source=source))
    return out


def read_target_table(d: Path, name: str) -> dict[str, str]:
    if not d.is_dir():
        raise DataDirError(f"{d}: not a directory")
    if not (d / name).is_file():
        raise DataDirError(f"{d}: the task's targets are in '{name}', which this data dir lacks")
    return read_table(d / name, allow_empty_value=name.startswith("text"))


def drop_by_length(examples: list[Example], cfg: BatchConfig, where: str) -> list[Example]:
    kept = [e for e in examples if cfg.min_frames <= e.length <= cfg.max_frames]
    if len(kept) < len(examples):
        log.warning("%s: dropped %d of %d utterances outside %d..%d frames (data.batch.min_frames/max_frames)",
                    where, len(examples) - len(kept), len(examples), cfg.min_frames, cfg.max_frames)
    if not kept:
        raise DataDirError(f"{where}: no utterance left after the length filter")
    return kept


def length_batches(lengths: list[int], cfg: BatchConfig, min_items: int = 1) -> list[list[int]]:
    """Indices sorted by length, cut into batches whose padded size stays within the budget."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches, current = [], []
    for i in order:
        n = len(current) + 1
        fits = n * lengths[i] <= cfg.batch_frames and (not cfg.batch_sequences or n <= cfg.batch_sequences)
        if current and not fits and len(current) >= min_items:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        if len(current) < min_items and batches:
            batches[-1] += current
        else:
            batches.append(current)
    return batches


# ----------------------------------------------------------------------------- collation
def _pad_ids(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    ids = [torch.tensor(s, dtype=torch.long) for s in seqs]
    return pad_sequence(ids, batch_first=True, padding_value=PAD_ID), torch.tensor([len(s) for s in seqs])


def collate(speech: list[Example], text: list[Example] = (), cmvn: CMVNStats | None = None,
            crop: CropConfig | None = None, rng: np.random.Generator | None = None) -> FinetuneBatch:
    """A batch of these examples; with `crop` (and its `rng`), speech cut to random excerpts."""
    batch = FinetuneBatch()
    if speech:
        feats = [load_features(e.record.utterance()) for e in speech]
        if crop is not None:
            feats = [f[slice(*crop.window(f.shape[0], rng))] for f in feats]
        if cmvn is not None:
            feats = [cmvn.normalize(f) for f in feats]
        batch.feats = pad_sequence(feats, batch_first=True)
        batch.feat_lens = torch.tensor([f.shape[0] for f in feats])
        batch.targets, batch.target_lens = _targets([e.target for e in speech])
        if speech[0].transcript is not None:
            batch.transcripts, batch.transcript_lens = _pad_ids([e.transcript for e in speech])
    if text:
        batch.text, batch.text_lens = _pad_ids([e.source for e in text])
        batch.text_targets, batch.text_target_lens = _targets([e.target for e in text])
    return batch


def _targets(targets: list) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    if targets[0] is None:
        return None, None
    if isinstance(targets[0], int):
        return torch.tensor(targets), None
    return _pad_ids(targets)


# ----------------------------------------------------------------------------- the training stream
@dataclass
class FinetuneBatches(torch.utils.data.Dataset):
    """Index = step number (from 1); item = this process's StepBatch of that step."""
    examples: list[Example]
    batch: BatchConfig
    seed: int
    rank: int = 0
    world_size: int = 1
    grad_accum: int = 1
    mt_examples: list[Example] = field(default_factory=list)  # joint ST+MT: as many per step as speech
    cmvn: Optional[CMVNStats] = None
    crop: Optional[CropConfig] = None

    def __post_init__(self):
        self.num_micro = self.world_size * self.grad_accum
        if len(self.examples) < self.num_micro:
            raise DataDirError(f"{len(self.examples)} training utterances cannot fill {self.num_micro} micro-batches")
        self.batches = length_batches([e.length for e in self.examples], self.batch, self.num_micro)

    def __len__(self) -> int:
        return 2 ** 62

    def plan(self, step: int) -> tuple[list[int], list[int]]:
        """Global indices of the step's utterances (and MT sentences)."""
        epoch, i = divmod(step - 1, len(self.batches))
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.batches))
        speech = self.batches[order[i]]
        mt: list[int] = []
        if self.mt_examples:
            rng = np.random.default_rng([self.seed, 1, step])
            mt = rng.choice(len(self.mt_examples), len(speech), replace=len(speech) > len(self.mt_examples)).tolist()
            mt.sort(key=lambda j: (self.mt_examples[j].length, j))
        return speech, mt

    def __getitem__(self, step: int) -> StepBatch:
        speech, mt = self.plan(step)
        mine = list(range(self.rank, self.num_micro, self.world_size))
        batches, ids = [], []
        for m in mine:
            s = [self.examples[i] for i in speech[m::self.num_micro]]
            t = [self.mt_examples[j] for j in mt[m::self.num_micro]]
            rng = np.random.default_rng([self.seed, 2, step, m])  # a function of the step: resumes exactly
            batches.append(collate(s, t, self.cmvn, self.crop, rng))
            ids.append([e.id for e in s + t])
        return StepBatch(step, batches, mine, ids)

    def fingerprint(self) -> dict:
        return {"examples": len(self.examples), "mt_examples": len(self.mt_examples),
                "batches": len(self.batches), "num_micro_batches": self.num_micro}


def fixed_batches(examples: list[Example], cfg: BatchConfig) -> list[list[Example]]:
    """Length-sorted batches in a fixed order (evaluation and decoding)."""
    return [[examples[i] for i in b] for b in length_batches([e.length for e in examples], cfg)]
