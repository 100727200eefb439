"""Fine-tuning models: the (pre-trained) joint encoder with a task head.

    st      encoder -> Transformer decoder over SentencePiece targets; joint ST+MT also feeds source
            text through the character front end and the shared layers to the same decoder
    asr     encoder -> RNN-T (LSTM prediction + joint network), or a CTC layer
    intent  encoder -> mean pooling -> linear       (MINDS-14)
    langid  encoder -> mean pooling -> linear       (FLEURS)
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

from mslam.data.finetune_data import FinetuneBatch
from mslam.losses import ctc_loss
from mslam.model.conformer import lengths_to_valid
from mslam.model.decoders import (PooledClassifier, RNNTConfig, RNNTDecoder, TransformerDecoder,
                                  TransformerDecoderConfig, ctc_greedy, ctc_prefix_beam_search)
from mslam.model.encoder import JointEncoder, ModelConfig
from mslam.train.schedule import Ramp

TASKS = ("st", "asr", "intent", "langid")


@dataclass
class SpecAugmentConfig:
    freq_masks: int = 2          # SpecAugment LD policy (Park et al. 2019); unknown for mSLAM
    freq_width: int = 27         # a mask covers up to this many of the 80 mel bins
    time_masks: int = 2
    time_width: float = 0.05     # a mask covers up to this fraction of the utterance


@dataclass
class RegularizationConfig(Ramp):
    """When SpecAugment and dropout act: off up to `start_step`, then growing linearly to their
    configured strength over `ramp_steps`. Regularising from step 0 slows early learning 2-3x at
    small budgets (a model must fit before it can overfit); 0 / 0: from the start."""
    # The encoder's dropout when fully on; null: the model config's, which with --init is the pre-training
    # run's (a pre-training without dropout would otherwise fine-tune without it too).
    encoder_dropout: Optional[float] = None


@dataclass
class HeadConfig:
    asr_decoder: Literal["rnnt", "ctc"] = "rnnt"   # paper: RNN-T; CTC is the lighter option
    rnnt: RNNTConfig = field(default_factory=RNNTConfig)
    decoder: TransformerDecoderConfig = field(default_factory=TransformerDecoderConfig)
    classifier_dropout: float = 0.1                # unknown in the paper
    # intent / langid: how the utterance is pooled (unknown in the paper). Measured from scratch on the
    # toy corpus (held-out voices, 300 steps): intent 86% with max against 17-25% (chance) with mean or
    # attention pooling, whose training loss stayed at ln 6; LangID 78% against 61% at 150 steps.
    pooling: Literal["mean", "max", "attention"] = "max"
    # asr with CTC, --init of an mslam-ctc run: the output layer starts as the pre-training CTC head, row by
    # row for the characters both vocabularies hold (the rest start fresh), so fine-tuning starts where the
    # paired data's CTC left off instead of from the all-blank plateau.
    inherit_ctc: bool = False
    mt_weight: float = 5.0                         # paper: joint ST+MT, weight 5.0 on the MT loss
    st_ctc_weight: float = 0.0                     # ST: weight of an auxiliary CTC loss over the source
                                                   # transcript's characters (`text`) on the encoder output
                                                   # (not in the paper; ESPnet's ST recipes use one)


@dataclass
class DecodeConfig:
    method: Literal["beam", "greedy"] = "beam"
    beam: int = 5                # unknown in the paper
    length_penalty: float = 1.0  # alpha of ((5+|y|)/6)^alpha (translation)
    max_len_ratio: float = 1.0   # translation: at most this many tokens per encoder frame (+5); a guard
                                 # against endless output only (0.5 cut short phrases mid-word)
    max_len: int = 256


def spec_augment(feats: torch.Tensor, lengths: torch.Tensor, cfg: SpecAugmentConfig,
                 strength: float = 1.0) -> torch.Tensor:
    """Frequency and time masks per utterance, filled with the utterance's mean (works with or without
    CMVN), their widths scaled by `strength`. Masks draw from torch's generator, which the trainer
    seeds per micro-batch."""
    b, t, f = feats.shape
    valid = lengths_to_valid(lengths, t)[..., None]
    mean = (feats * valid).sum((1, 2), keepdim=True) / (lengths[:, None, None] * f).clamp(min=1)
    masked = torch.zeros(b, t, f, dtype=torch.bool, device=feats.device)
    for axis_len, count, widest, dim in ((torch.full_like(lengths, f), cfg.freq_masks,
                                          torch.full_like(lengths, round(cfg.freq_width * strength)), 2),
                                         (lengths, cfg.time_masks, (lengths * cfg.time_width * strength).long(), 1)):
        pos = torch.arange(feats.shape[dim], device=feats.device)
        for _ in range(count):
            width = (torch.rand(b, device=feats.device) * (widest + 1)).long()
            start = (torch.rand(b, device=feats.device) * (axis_len - width + 1).clamp(min=1)).long()
            hit = (pos[None] >= start[:, None]) & (pos[None] < (start + width)[:, None])
            masked |= hit[:, None, :] if dim == 2 else hit[:, :, None]
    return torch.where(masked, mean, feats)


class FinetuneModel(nn.Module):
    def __init__(self, task: str, model_cfg: ModelConfig, head: HeadConfig, num_targets: int, *,
                 spec_augment: SpecAugmentConfig | None = None, freeze_encoder_steps: int = 0,
                 regularization: RegularizationConfig | None = None, transcript_vocab: int = 0,
                 pad_id: int = 0, bos_id: int = 2, eos_id: int = 3):
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r} (one of {', '.join(TASKS)})")
        self.task, self.head_cfg, self.spec_cfg = task, head, spec_augment
        self.regularization = regularization or RegularizationConfig()
        self.reg_strength = 1.0
        self.freeze_encoder_steps = freeze_encoder_steps
        self.encoder = JointEncoder(model_cfg, with_text=task == "st")  # ST: text input for MT and zero-shot
        d = model_cfg.encoder.d_model
        if task == "st" and head.st_ctc_weight > 0 and transcript_vocab < 1:
            raise ValueError("head.st_ctc_weight needs the size of the source transcripts' vocabulary")
        self.st_ctc = nn.Linear(d, transcript_vocab) if task == "st" and head.st_ctc_weight > 0 else None
        if task == "st":
            self.decoder = TransformerDecoder(head.decoder, num_targets, d, pad_id=pad_id, bos_id=bos_id,
                                              eos_id=eos_id)
        elif task == "asr" and head.asr_decoder == "rnnt":
            self.decoder = RNNTDecoder(head.rnnt, num_targets, d, blank_id=model_cfg.blank_id)
        elif task == "asr":
            self.decoder = nn.Linear(d, num_targets)
        else:
            self.decoder = PooledClassifier(d, num_targets, head.classifier_dropout, head.pooling)
        self.dropout_rates = dropout_rates(self)

    def set_regularization(self, strength: float) -> None:
        """Scale every dropout rate of the model, and SpecAugment's widths, by `strength` (0..1)."""
        if strength != self.reg_strength:
            for module, attr, rate in self.dropout_rates:
                setattr(module, attr, rate * strength)
            self.reg_strength = strength

    @property
    def uses_rnnt(self) -> bool:
        return isinstance(self.decoder, RNNTDecoder)

    # -- encoding --
    def encoder_frozen(self, step: int) -> bool:
        return self.training and step <= self.freeze_encoder_steps

    def encode_speech(self, feats, feat_lens, step: int = 0):
        if self.training and self.spec_cfg is not None and self.reg_strength > 0:
            feats = spec_augment(feats, feat_lens, self.spec_cfg, self.reg_strength)
        with torch.no_grad() if self.encoder_frozen(step) else nullcontext():
            return self.encoder(feats, feat_lens)

    def encode_text(self, tokens, token_lens, step: int = 0):
        with torch.no_grad() if self.encoder_frozen(step) else nullcontext():
            return self.encoder.encode_text(tokens, token_lens), token_lens

    # -- training --
    def forward(self, batch: FinetuneBatch, step: int = 0) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        terms = []
        if self.training:
            self.set_regularization(self.regularization.at(step))
        if batch.feats is not None:
            enc, lens = self.encode_speech(batch.feats, batch.feat_lens, step)
            loss, acc = self.task_loss(enc, lens, batch.targets, batch.target_lens)
            out[self.task], terms = loss, [loss]
            if acc is not None:
                out[f"{self.task}_acc"] = acc
            if self.st_ctc is not None and batch.transcripts is not None:
                out["st_ctc"] = ctc_loss(self.st_ctc(enc), lens, batch.transcripts, batch.transcript_lens, blank=0)
                terms.append(self.head_cfg.st_ctc_weight * out["st_ctc"])
        if batch.text is not None:  # joint ST+MT: text through the same encoder and decoder
            enc, lens = self.encode_text(batch.text, batch.text_lens, step)
            out["mt"], out["mt_acc"] = self.decoder.loss(enc, lens, batch.text_targets, batch.text_target_lens)
            terms.append(self.head_cfg.mt_weight * out["mt"])
        out["loss"] = torch.stack(terms).sum()
        return out

    def task_loss(self, enc, lens, targets, target_lens):
        if self.task == "st":
            return self.decoder.loss(enc, lens, targets, target_lens)
        if self.task == "asr" and self.uses_rnnt:
            return self.decoder.loss(enc, lens, targets, target_lens), None
        if self.task == "asr":
            return ctc_loss(self.decoder(enc), lens, targets, target_lens, blank=0), None
        logits = self.decoder(enc, lens)
        return F.cross_entropy(logits.float(), targets), (logits.argmax(-1) == targets).float().mean().detach()

    # -- inference --
    @torch.no_grad()
    def decode(self, batch: FinetuneBatch, cfg: DecodeConfig) -> list:
        """Token-id lists (st, asr) or class indices (intent, langid), one per input in the batch;
        a batch with text instead of speech is translated from text (zero-shot or MT)."""
        if batch.feats is not None:
            enc, lens = self.encode_speech(batch.feats, batch.feat_lens)
        else:
            enc, lens = self.encode_text(batch.text, batch.text_lens)
        greedy = cfg.method == "greedy"
        if self.task == "st":
            return self.decoder.beam_search(enc, lens, beam=1 if greedy else cfg.beam,
                                            alpha=0.0 if greedy else cfg.length_penalty,
                                            max_len_ratio=cfg.max_len_ratio, max_len=cfg.max_len)
        if self.task == "asr" and self.uses_rnnt:
            return self.decoder.greedy_search(enc, lens) if greedy else self.decoder.beam_search(enc, lens, cfg.beam)
        if self.task == "asr":
            logits = self.decoder(enc)
            return ctc_greedy(logits, lens) if greedy else ctc_prefix_beam_search(logits, lens, cfg.beam)
        return self.decoder(enc, lens).argmax(-1).tolist()

    def parameter_groups(self) -> tuple[list[tuple[int, list[nn.Parameter]]], list[nn.Parameter]]:
        """Encoder parameters by depth from the top (0 = the top layer and the text front end's
        neighbours), and the head's parameters: for layer-wise learning rates."""
        enc = self.encoder
        layers = [*enc.speech_layers.layers, *enc.shared_layers.layers]
        groups = [(len(layers) - i - 1, list(layer.parameters())) for i, layer in enumerate(layers)]
        groups.append((len(layers), list(enc.speech_frontend.parameters())))
        if enc.text_frontend is not None:
            groups.append((len(layers) - len(enc.shared_layers.layers), list(enc.text_frontend.parameters())))
        seen = {id(p) for _, ps in groups for p in ps}
        rest = [p for p in enc.parameters() if id(p) not in seen]
        if rest:
            groups.append((0, rest))
        head = [*self.decoder.parameters(), *(self.st_ctc.parameters() if self.st_ctc is not None else [])]
        return groups, head


def dropout_rates(model: nn.Module) -> list[tuple[nn.Module, str, float]]:
    """(module, attribute, rate) of every dropout in the model: nn.Dropout's `p`, and the float
    `dropout` / `attn_dropout` rates that the Conformer, the heads, nn.LSTM and nn.MultiheadAttention
    read at each forward."""
    rates = []
    for m in model.modules():
        for attr in (("p",) if isinstance(m, nn.Dropout) else ("dropout", "attn_dropout")):
            rate = getattr(m, attr, None)
            if isinstance(rate, float) and rate > 0:
                rates.append((m, attr, rate))
    return rates
