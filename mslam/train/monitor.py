"""Collapse monitor of pre-training: the encoder in eval mode on one fixed batch of held-out speech.

Training-batch statistics hide a collapse (masked input, dropout on, one language per batch), so every
`monitor.every` steps the model sees the same utterances, unmasked, without dropout, and the record
goes to dev.jsonl: how much the top layer's output differs between frames and between utterances
(against its value before the first step), and masked-prediction and contrastive accuracy beside what
predicting the commonest target scores. Below `collapse_fraction` of the initial spread, the log warns.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from mslam.data.features import CMVNStats
from mslam.data.manifest import Record, speech_manifest
from mslam.data.pretrain_data import _speech_tensors
from mslam.data.shards import ShardSource
from mslam.model.conformer import lengths_to_valid
from mslam.model.pretrain import PretrainModel, SpeechPart, frame_spread, utterance_spread

log = logging.getLogger("mslam.train")
MONITOR_SEED = 1234  # masks, distractors and Gumbel noise of the monitor: the same at every evaluation
MIN_FRAMES = 20      # shorter utterances leave too few frames after 4x subsampling to spread
SHARD_TRIES = 20     # draws per wanted utterance and language in a shard set
SPEECH_STATS = ("w2v_mlm_acc", "w2v_mlm_majority_acc", "w2v_contrastive_acc", "target_perplexity",
                "target_top_share")


@dataclass
class MonitorConfig:
    every: int = 100             # steps between evaluations (0: never)
    data: Optional[str] = None   # a speech data dir or shard set (under data.root); default: data.speech.dirs[0]
    utterances: int = 16         # drawn once with a fixed seed, in turn from each language
    max_frames: int = 1000
    collapse_fraction: float = 0.2  # warn when a spread falls below this fraction of its initial value


def held_out_batch(data_dir, cfg: MonitorConfig, cmvn: CMVNStats | None, cache_dir=None) -> SpeechPart:
    """The monitor's utterances: a seeded draw, one language after another, none longer than max_frames,
    from a Kaldi data dir or a shard set (python -m mslam.bin.make_shards)."""
    data_dir = Path(data_dir)
    if (data_dir / "index.json").is_file():
        by_lang = _shard_set_candidates(data_dir, cfg)
    else:
        by_lang = _data_dir_candidates(data_dir, cfg, cache_dir)
    if not by_lang:
        raise ValueError(f"monitor.data {data_dir}: no utterance of {MIN_FRAMES}..{cfg.max_frames} frames")
    chosen, queues = [], list(by_lang.values())
    while len(chosen) < cfg.utterances and any(queues):
        for q in queues:
            if q and len(chosen) < cfg.utterances:
                chosen.append(q.pop())
    return SpeechPart(*_speech_tensors(chosen, cmvn))


def _data_dir_candidates(data_dir: Path, cfg: MonitorConfig, cache_dir) -> dict[str, list[Record]]:
    records = [r for r in speech_manifest(data_dir, cache_dir=cache_dir) if MIN_FRAMES <= r.length <= cfg.max_frames]
    rng = np.random.default_rng(MONITOR_SEED)
    by_lang: dict[str, list] = {}
    for i in rng.permutation(len(records)):
        by_lang.setdefault(records[i].lang, []).append(records[i])
    return by_lang


def _shard_set_candidates(shard_dir: Path, cfg: MonitorConfig) -> dict[str, list[Record]]:
    """Up to monitor.utterances usable utterances per language, drawn with the monitor's seed. Only the
    drawn utterances are read, so a set of millions costs what a small one does."""
    source = ShardSource([shard_dir], "speech")
    rng = np.random.default_rng(MONITOR_SEED)
    shards_of: dict[str, list] = {}
    for shard in source.shards:
        shards_of.setdefault(shard.lang, []).append(shard)
    by_lang: dict[str, list] = {}
    for lang, shards in sorted(shards_of.items()):
        ends = np.cumsum([s.count for s in shards])
        picked: dict[int, Record] = {}
        for _ in range(SHARD_TRIES * cfg.utterances):   # bounded: a language of short clips may give none
            k = int(rng.integers(ends[-1]))
            j = int(np.searchsorted(ends, k, side="right"))
            i = shards[j].base + k - (ends[j - 1] if j else 0)
            if i not in picked and MIN_FRAMES <= source.length(i) <= cfg.max_frames:
                picked[i] = source.record(i)
                if len(picked) == cfg.utterances:
                    break
        if picked:
            by_lang[lang] = list(picked.values())
    return by_lang


@torch.no_grad()
def evaluate(model: PretrainModel, part: SpeechPart, step: int) -> dict[str, float]:
    """Spreads of the unmasked top layer and the speech objective's accuracies, in eval mode."""
    device = next(model.parameters()).device
    part = SpeechPart(part.feats.to(device), part.feat_lens.to(device))
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(MONITOR_SEED)
            enc = model.encoder
            x, lens = enc.speech_features(part.feats, part.feat_lens)
            valid = lengths_to_valid(lens, x.shape[1])
            top = enc.shared(enc.speech_stack(x, lens), lens)
            stats = {"frame_spread": frame_spread(top, valid), "utterance_spread": utterance_spread(top, valid)}
            losses = model.speech_losses(part, step)
            stats.update({k: losses[k] for k in SPEECH_STATS})
    finally:
        model.train(was_training)
    return {k: float(v) for k, v in stats.items()}


class CollapseMonitor:
    def __init__(self, cfg: MonitorConfig, part: SpeechPart):
        self.cfg, self.part = cfg, part
        self.initial: dict[str, float] = {}

    def due(self, step: int, max_steps: int) -> bool:
        return self.cfg.every > 0 and (step % self.cfg.every == 0 or step == max_steps)

    def record(self, model: PretrainModel, step: int) -> tuple[dict, list[str]]:
        """The dev record of this step and the warnings it raises (on masked prediction only once it is
        trained at full weight: `objective.mlm_ramp`)."""
        stats = evaluate(model, self.part, step)
        if not self.initial:  # before the first step (or a run resumed from before this monitor existed)
            self.initial = {k: stats[k] for k in ("frame_spread", "utterance_spread")}
        record, warnings = {"step": step, **stats}, []
        for name, start in self.initial.items():
            ratio = stats[name] / max(start, 1e-12)
            record[f"{name}_ratio"] = ratio
            if ratio < self.cfg.collapse_fraction:
                warnings.append(f"step {step}: COLLAPSE? the encoder's {name.replace('_', ' ')} on held-out speech "
                                f"is {stats[name]:.4f}, {ratio:.0%} of its initial {start:.4f} (below "
                                f"monitor.collapse_fraction {self.cfg.collapse_fraction}): the output hardly "
                                "depends on the input")
        trained = step > 0 and model.objective.mlm_ramp.at(step) >= 1
        if trained and stats["w2v_mlm_acc"] <= stats["w2v_mlm_majority_acc"]:
            warnings.append(f"step {step}: masked prediction ({stats['w2v_mlm_acc']:.3f}) is no better than "
                            f"predicting the commonest target ({stats['w2v_mlm_majority_acc']:.3f})")
        record["collapsed"] = any("COLLAPSE" in w for w in warnings)
        return record, warnings
