"""Pre-training data: every step draws a batch from each source (unlabeled speech, unlabeled text,
paired speech-text), each with its own budget, its languages drawn by temperature sampling.

A step's batch is a pure function of (seed, source, step): a numpy Generator seeded with those three
numbers picks a language (p_l ~ (n_l / N)^(1/T), n_l = frames or characters of language l), a
length bucket of that language, then utterances of the bucket in random order while the budget
(sequences, padded frames / characters) holds. So resuming at step s needs no replay, any process
can build any step, and the global batch is split the same way whatever the number of processes:
it is sorted by length and dealt into `world_size * grad_accum` micro-batches; micro-batch m is
processed by rank m % world_size.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from mslam.config import ConfigError
from mslam.data.features import CMVNStats, load_features
from mslam.data.manifest import Record, speech_manifest, text_manifest
from mslam.data.shards import ShardSampler, ShardSource
from mslam.data.tokenizer import PAD_ID, CharTokenizer, temperature_weights
from mslam.model.pretrain import PairedPart, PretrainBatch, SpeechPart, TextPart

log = logging.getLogger("mslam.data")
SOURCES = ("speech", "text", "paired")


# ----------------------------------------------------------------------------- config
@dataclass
class SourceConfig:
    dirs: list[str] = field(default_factory=list)  # relative to data.root; empty: the source is not used
    temperature: float = 1.0     # language sampling p_l ~ (n_l / N)^(1/T); T=1 proportional, large T uniform
    batch_sequences: int = 0     # sequences per step, all processes together (0: no limit)
    buckets: int = 10            # length buckets per language (each step draws from one)
    # dirs: Kaldi data dirs / dirs of <lang>.txt, held in memory, one language per batch;
    # shards: shard sets (python -m mslam.bin.make_shards), read lazily, languages mixed per utterance
    # (mslam/data/shards.py; their length buckets are the ones make_shards wrote).
    format: Literal["dirs", "shards"] = "dirs"

    def __post_init__(self):
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.dirs and self.batch_sequences <= 0 and self.budget_units() <= 0:
            raise ValueError("a source with dirs needs batch_sequences or a frame/character budget")

    def budget_units(self) -> int:
        return 0

    def max_units(self) -> int:
        return 0


@dataclass
class SpeechSourceConfig(SourceConfig):
    """Kaldi data dirs (wav.scp or feats.scp, utt2lang; paired dirs also `text`)."""
    batch_frames: int = 0        # padded feature frames (10 ms) per step, all processes together (0: no limit)
    max_frames: int = 2000       # longer utterances are dropped with a warning (memory guard; 20 s)
    min_frames: int = 20         # shorter ones too (4x subsampling leaves too few frames to mask)

    def budget_units(self) -> int:
        return self.batch_frames

    def max_units(self) -> int:
        return self.max_frames


@dataclass
class TextSourceConfig(SourceConfig):
    """Directories of text shards `<lang>.txt`, one sentence per line."""
    temperature: float = 3.0     # paper: T = 3 for text
    batch_chars: int = 0         # padded characters per step, all processes together (0: no limit)
    max_chars: int = 512         # longer sentences are cut to their first max_chars characters

    def budget_units(self) -> int:
        return self.batch_chars

    def max_units(self) -> int:
        return self.max_chars


@dataclass
class DataConfig:
    root: str = "."              # relative paths below are under this dir (a relative root: under the cwd)
    vocab: str = "chars.txt"     # character vocabulary (python -m mslam.bin.build_char_vocab)
    cmvn: Optional[str] = None   # global mean/variance stats (cmvn.npz) applied to every feature
    speech: SpeechSourceConfig = field(default_factory=SpeechSourceConfig)
    text: TextSourceConfig = field(default_factory=TextSourceConfig)
    paired: SpeechSourceConfig = field(default_factory=SpeechSourceConfig)
    num_workers: int = 2         # DataLoader processes building batches (features on the fly or from ark)
    prefetch_steps: int = 4      # steps each worker builds ahead
    # Static shapes: every batch padded to a fixed grid, lengths up to the next of a geometric series
    # (x shape_growth from shape_min_len, capped at the source's maximum) and the batch up to the next
    # power of 2 with empty rows (length 0, which every loss leaves out). So torch.compile compiles the
    # whole model once per shape, and a few shapes cover an epoch. Off: batches as long as their longest item.
    static_shapes: bool = False
    shape_growth: float = 1.25
    shape_min_len: int = 64

    def __post_init__(self):
        if self.shape_growth <= 1.0 or self.shape_min_len < 1:
            raise ValueError(f"need shape_growth > 1 and shape_min_len >= 1, got {self.shape_growth}, "
                             f"{self.shape_min_len}")

    def path(self, p: str) -> Path:
        return Path(self.root) / p


# ----------------------------------------------------------------------------- sampling
class SourceSampler:
    """Draws the record indices of one source's global batch for a step (a pure function of it)."""

    def __init__(self, name: str, records: list[Record], cfg: SourceConfig, seed: int, min_items: int):
        self.name, self.cfg, self.seed, self.min_items = name, cfg, seed, min_items
        self.source_id = SOURCES.index(name)
        self.lengths = np.array([r.length for r in records], dtype=np.int64)
        by_lang: dict[str, list[int]] = {}
        for i, r in enumerate(records):
            by_lang.setdefault(r.lang, []).append(i)
        self.langs = sorted(by_lang)
        sizes = {lang: int(self.lengths[by_lang[lang]].sum()) for lang in self.langs}
        weights = temperature_weights(sizes, cfg.temperature)
        self.probs = np.array([weights[lang] for lang in self.langs])
        self.buckets = {}
        for lang, idx in by_lang.items():
            idx = np.array(sorted(idx, key=lambda i: (self.lengths[i], i)), dtype=np.int64)
            # No bucket smaller than one item per micro-batch, while the language has enough.
            n_buckets = max(1, min(cfg.buckets, len(idx) // max(min_items, 1)))
            self.buckets[lang] = np.array_split(idx, n_buckets)

    def draw(self, step: int) -> list[int]:
        rng = np.random.default_rng([self.seed, self.source_id, step])
        lang = self.langs[rng.choice(len(self.langs), p=self.probs)]
        buckets = self.buckets[lang]
        bucket = buckets[rng.integers(len(buckets))]
        order = rng.permutation(bucket)
        max_seqs, max_units = self.cfg.batch_sequences, self.cfg.budget_units()
        chosen: list[int] = []
        longest = 0
        while True:
            # Every micro-batch gets at least one item: a small bucket is cycled through again.
            i = int(order[len(chosen) % len(order)])
            n, longest_next = len(chosen) + 1, max(longest, int(self.lengths[i]))
            fits = (not max_seqs or n <= max_seqs) and (not max_units or n * longest_next <= max_units)
            if len(chosen) >= self.min_items and (not fits or len(chosen) >= len(order)):
                return chosen
            chosen.append(i)
            longest = longest_next

    def language_share(self) -> dict[str, float]:
        return dict(zip(self.langs, self.probs.tolist()))


# ----------------------------------------------------------------------------- batches
@dataclass
class StepBatch:
    """What one process trains on in one step: its micro-batches, and the ids in them (for messages)."""
    step: int
    micro_batches: list[PretrainBatch]
    micro_ids: list[int]                 # the global micro-batch index of each (seeds its model randomness)
    utt_ids: list[list[str]]


def _speech_tensors(records: list[Record], cmvn: CMVNStats | None) -> tuple[torch.Tensor, torch.Tensor]:
    feats = [load_features(r.utterance()) for r in records]
    if cmvn is not None:
        feats = [cmvn.normalize(f) for f in feats]
    lens = torch.tensor([f.shape[0] for f in feats], dtype=torch.long)
    return pad_sequence(feats, batch_first=True), lens


def _token_tensors(records: list[Record], tokenizer: CharTokenizer, max_chars: int = 0):
    ids = [torch.tensor(tokenizer.encode(r.text)[:max_chars or None], dtype=torch.long) for r in records]
    lens = torch.tensor([len(t) for t in ids], dtype=torch.long)
    return pad_sequence(ids, batch_first=True, padding_value=PAD_ID), lens


class PretrainBatches(torch.utils.data.Dataset):
    """Index = step number (from 1); item = this process's StepBatch for that step."""

    def __init__(self, cfg: DataConfig, tokenizer: CharTokenizer, *, seed: int, rank: int = 0,
                 world_size: int = 1, grad_accum: int = 1, cache_dir: str | os.PathLike | None = None):
        self.cfg, self.tokenizer = cfg, tokenizer
        self.rank, self.world_size, self.num_micro = rank, world_size, world_size * grad_accum
        self.cmvn = CMVNStats.load(cfg.path(cfg.cmvn)) if cfg.cmvn else None
        self.records: dict[str, list[Record]] = {}
        self.samplers: dict[str, SourceSampler] = {}
        for name in SOURCES:
            src = getattr(cfg, name)
            if not src.dirs:
                continue
            if src.format == "shards":   # records read when a batch is collated, lengths when drawn
                source = ShardSource([cfg.path(d) for d in src.dirs], name)
                self.records[name] = source
                self.samplers[name] = ShardSampler(name, source, src, seed, self.num_micro, SOURCES.index(name))
                continue
            records = load_source(name, src, cfg, cache_dir)
            if not records:
                raise ConfigError(f"data.{name}: no usable utterances in {src.dirs} (under {cfg.root})")
            self.records[name] = records
            self.samplers[name] = SourceSampler(name, records, src, seed, self.num_micro)
        if not self.samplers:
            raise ConfigError("data: no source has dirs; give data.speech.dirs, data.text.dirs or data.paired.dirs")

    def __len__(self) -> int:  # steps are unbounded; the trainer's sampler says which to build
        return 2 ** 62

    def plan(self, step: int) -> dict[str, list[list[int]]]:
        """Per source, the record indices of each global micro-batch of `step`."""
        out = {}
        for name, sampler in self.samplers.items():
            idx = sorted(sampler.draw(step), key=lambda i: (sampler.lengths[i], i))
            out[name] = [idx[m::self.num_micro] for m in range(self.num_micro)]
        return out

    def __getitem__(self, step: int) -> StepBatch:
        plan = self.plan(step)
        mine = list(range(self.rank, self.num_micro, self.world_size))
        batches, ids = [], []
        for m in mine:
            parts = {name: [self.records[name][i] for i in micro[m]] for name, micro in plan.items()}
            batches.append(self.collate(parts))
            ids.append([r.id for recs in parts.values() for r in recs])
        return StepBatch(step, batches, mine, ids)

    def collate(self, parts: dict[str, list[Record]]) -> PretrainBatch:
        batch = PretrainBatch()
        if "speech" in parts:
            batch.speech = SpeechPart(*_speech_tensors(parts["speech"], self.cmvn))
        if "text" in parts:
            batch.text = TextPart(*_token_tensors(parts["text"], self.tokenizer, self.cfg.text.max_chars))
        if "paired" in parts:
            feats, feat_lens = _speech_tensors(parts["paired"], self.cmvn)
            batch.paired = PairedPart(feats, feat_lens, *_token_tensors(parts["paired"], self.tokenizer))
        return pad_to_static_shape(batch, self.cfg) if self.cfg.static_shapes else batch

    def shapes(self, step: int) -> dict[str, tuple[int, ...]]:
        """The tensor shapes of `step`'s first micro-batch per source, from the manifest lengths alone
        (no audio read): what torch.compile would see."""
        out = {}
        for name, micro in self.plan(step).items():
            idx = micro[0]
            longest = max(int(self.samplers[name].lengths[i]) for i in idx)
            b, t = len(idx), longest
            if self.cfg.static_shapes:
                b, t = static_batch(b), static_length(t, self.cfg, getattr(self.cfg, name).max_units())
            out[name] = (b, t)
        return out

    def fingerprint(self) -> dict:
        """What decides the data order: stored in checkpoints and compared on resume."""
        return {"sources": {n: [len(self.records[n]), len(s.langs)] for n, s in self.samplers.items()},
                "num_micro_batches": self.num_micro}


def static_length(n: int, cfg: DataConfig, cap: int = 0) -> int:
    """The grid length that holds n: shape_min_len * growth^i rounded up to a multiple of 8, or cap."""
    size = cfg.shape_min_len
    while size < n:
        size = int(math.ceil(size * cfg.shape_growth / 8) * 8)
    return max(n, min(size, cap)) if cap else size


def static_batch(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


def pad_to_static_shape(batch: PretrainBatch, cfg: DataConfig) -> PretrainBatch:
    """Pad lengths and batch sizes of every part to the grid (empty rows have length 0)."""
    def pad(x: torch.Tensor, rows: int, length: int, value=0) -> torch.Tensor:
        extra = [0, 0] * (x.dim() - 2) + [0, length - x.shape[1], 0, rows - x.shape[0]]
        return torch.nn.functional.pad(x, extra, value=value)

    def pad_lens(lens: torch.Tensor, rows: int) -> torch.Tensor:
        return torch.nn.functional.pad(lens, (0, rows - lens.shape[0]))

    out = PretrainBatch()
    if batch.speech is not None:
        b = static_batch(batch.speech.feats.shape[0])
        t = static_length(batch.speech.feats.shape[1], cfg, cfg.speech.max_frames)
        out.speech = SpeechPart(pad(batch.speech.feats, b, t), pad_lens(batch.speech.feat_lens, b))
    if batch.text is not None:
        b = static_batch(batch.text.tokens.shape[0])
        t = static_length(batch.text.tokens.shape[1], cfg, cfg.text.max_chars)
        out.text = TextPart(pad(batch.text.tokens, b, t, PAD_ID), pad_lens(batch.text.token_lens, b))
    if batch.paired is not None:
        p = batch.paired
        b = static_batch(p.feats.shape[0])
        t = static_length(p.feats.shape[1], cfg, cfg.paired.max_frames)
        lt = static_length(p.tokens.shape[1], cfg)
        out.paired = PairedPart(pad(p.feats, b, t), pad_lens(p.feat_lens, b), pad(p.tokens, b, lt, PAD_ID),
                                pad_lens(p.token_lens, b))
    return out


def load_source(name: str, src: SourceConfig, cfg: DataConfig, cache_dir) -> list[Record]:
    records: list[Record] = []
    for d in src.dirs:
        if name == "text":
            records += text_manifest(cfg.path(d))
        else:
            records += speech_manifest(cfg.path(d), with_text=name == "paired", cache_dir=cache_dir)
    if name == "paired":  # an empty transcript would teach CTC to emit nothing
        empty = [r.id for r in records if not r.text]
        if empty:
            log.warning("data.paired: dropped %d utterance(s) with an empty transcript (first: %s)", len(empty),
                        empty[0])
            records = [r for r in records if r.text]
    if isinstance(src, SpeechSourceConfig):
        kept = [r for r in records if src.min_frames <= r.length <= src.max_frames]
        if len(kept) < len(records):
            longer = sum(r.length > src.max_frames for r in records)
            log.warning("data.%s: dropped %d of %d utterances (%d longer than max_frames %d, %d shorter than "
                        "min_frames %d)", name, len(records) - len(kept), len(records), longer, src.max_frames,
                        len(records) - len(kept) - longer, src.min_frames)
        records = kept
    else:
        for r in records:
            r.length = min(r.length, src.max_units() or r.length)
    return records

