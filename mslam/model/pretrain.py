"""mSLAM pre-training: the joint encoder with its w2v-BERT, span-MLM, TLM and CTC objectives.

Variants: `w2v-bert` (speech only), `mslam-tlm` (+ text span MLM + TLM), `mslam-ctc` (+ CTC on the
paired speech in a separate pass without the transcript).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal, Optional

import torch
from torch import nn

from mslam.losses import (contrastive_loss, ctc_loss, diversity_loss, gather_steps, masked_cross_entropy,
                          sample_distractors)
from mslam.model.conformer import lengths_to_valid, masked_mean
from mslam.model.encoder import JointEncoder, ModelConfig
from mslam.model.masking import SpeechMaskConfig, SpeechSpanMasker, TextMaskConfig, TextSpanMasker
from mslam.model.quantizer import GumbelVectorQuantizer, QuantizerConfig, RandomProjectionQuantizer
from mslam.train.schedule import Ramp


CODE_PREDICTION = ("w2v_mlm", "tlm_speech")  # the terms whose targets are the quantiser's code ids


# ----------------------------------------------------------------------------- config
@dataclass
class ContrastiveConfig:
    distractors: int = 100       # K (wav2vec 2.0; unknown for w2v-BERT/mSLAM)
    temperature: float = 0.1     # kappa (wav2vec 2.0; unknown for w2v-BERT/mSLAM)


@dataclass
class TLMConfig:
    text_mask: TextMaskConfig = field(default_factory=lambda: TextMaskConfig(ratio=0.5))
    speech_mask: SpeechMaskConfig = field(default_factory=SpeechMaskConfig)


@dataclass
class LossWeights:
    """total = speech * (w2v_contrastive*Lc + w2v_diversity*Ld + w2v_mlm*Lm) + text * text_mlm
               + paired * (tlm_text + tlm_speech + ctc terms, each with its weight)."""
    speech: float = 1.0
    text: float = 1.0
    paired: float = 1.0
    w2v_contrastive: float = 1.0
    w2v_diversity: float = 0.1
    w2v_mlm: float = 1.0
    text_mlm: float = 1.0
    tlm_text: float = 1.0
    tlm_speech: float = 1.0
    ctc: float = 1.0

    def term_weights(self) -> dict[str, float]:
        group = {"w2v_contrastive": self.speech, "w2v_diversity": self.speech, "w2v_mlm": self.speech,
                 "text_mlm": self.text, "tlm_text": self.paired, "tlm_speech": self.paired, "ctc": self.paired}
        return {name: g * getattr(self, name) for name, g in group.items()}


@dataclass
class ObjectiveConfig:
    variant: Literal["w2v-bert", "mslam-tlm", "mslam-ctc"] = "mslam-ctc"
    speech_mask: SpeechMaskConfig = field(default_factory=SpeechMaskConfig)
    text_mask: TextMaskConfig = field(default_factory=TextMaskConfig)
    tlm: TLMConfig = field(default_factory=TLMConfig)
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)
    contrastive: ContrastiveConfig = field(default_factory=ContrastiveConfig)
    weights: LossWeights = field(default_factory=LossWeights)
    # The masked prediction of code ids (w2v_mlm, tlm_speech) scaled in over steps, for targets that are noise
    # until the quantiser has learned; 0 / 0: from the start (the paper). Measured at mini scale: on its own
    # it did not keep the encoder from collapsing (the quantiser settings in mini.yaml did).
    mlm_ramp: Ramp = field(default_factory=Ramp)


# ----------------------------------------------------------------------------- batch
def _to(x, device):
    return None if x is None else x.to(device, non_blocking=True)


@dataclass
class SpeechPart:
    feats: torch.Tensor          # float [B, T, 80]
    feat_lens: torch.Tensor      # long [B]


@dataclass
class TextPart:
    tokens: torch.Tensor         # long [B, L] (padded with pad_id)
    token_lens: torch.Tensor     # long [B]


@dataclass
class PairedPart:
    feats: torch.Tensor
    feat_lens: torch.Tensor
    tokens: torch.Tensor         # the transcript's character ids (no <s>/</s>: CTC targets)
    token_lens: torch.Tensor


@dataclass
class PretrainBatch:
    """One pre-training step's data; any part may be missing."""
    speech: Optional[SpeechPart] = None
    text: Optional[TextPart] = None
    paired: Optional[PairedPart] = None

    def to(self, device) -> "PretrainBatch":
        def move(part):
            if part is None:
                return None
            return type(part)(**{f.name: _to(getattr(part, f.name), device) for f in fields(part)})
        return PretrainBatch(move(self.speech), move(self.text), move(self.paired))

    def sizes(self) -> dict[str, torch.Tensor]:
        """Feature frames and characters in the batch (for throughput figures), as tensors (not read here)."""
        zero = torch.zeros((), dtype=torch.float64)
        return {"frames": sum((p.feat_lens.sum().double() for p in (self.speech, self.paired) if p), zero),
                "chars": sum((p.token_lens.sum().double() for p in (self.text, self.paired) if p), zero)}


# ----------------------------------------------------------------------------- model
class PretrainModel(nn.Module):
    def __init__(self, model_cfg: ModelConfig, objective: ObjectiveConfig):
        super().__init__()
        self.model_cfg, self.objective = model_cfg, objective
        variant = objective.variant
        self.uses_text = variant in ("mslam-tlm", "mslam-ctc")
        self.uses_ctc = variant == "mslam-ctc"
        self.ctc_on_device: bool | None = None  # the sync-free CTC: None = on accelerators only (losses/ctc.py)
        d = model_cfg.encoder.d_model
        q = objective.quantizer
        self.encoder = JointEncoder(model_cfg, with_text=self.uses_text)
        self.quantizer = GumbelVectorQuantizer(d, q.groups, q.codes, q.code_dim or d, q.input_norm, q.init_std)
        self.target_quantizer = (RandomProjectionQuantizer(model_cfg.frontend.feat_dim, model_cfg.frontend.subsampling,
                                                           q.groups, q.codes)
                                 if q.mlm_targets == "random_projection" else None)
        self.speech_masker = SpeechSpanMasker(objective.speech_mask, d)
        self.contrastive_proj = nn.Linear(d, q.code_dim or d)
        self.speech_mlm_head = nn.Linear(d, q.groups * q.codes)  # also TLM's speech head
        self.text_mlm_head = nn.Linear(d, model_cfg.vocab_size) if self.uses_text else None  # also TLM's
        self.ctc_head = nn.Linear(d, model_cfg.vocab_size) if self.uses_ctc else None
        if self.uses_text:
            self.tlm_speech_masker = SpeechSpanMasker(objective.tlm.speech_mask, d,
                                                      embedding=self.speech_masker.embedding)
            low, high = model_cfg.num_special, model_cfg.vocab_size
            self.text_masker = TextSpanMasker(objective.text_mask, model_cfg.mask_id, low, high)
            self.tlm_text_masker = TextSpanMasker(objective.tlm.text_mask, model_cfg.mask_id, low, high)
        self.weights = objective.weights.term_weights()

    def forward(self, batch: PretrainBatch, step: int = 0) -> dict[str, torch.Tensor]:
        """Named losses, the weighted total `loss`, and detached statistics."""
        part = batch.speech or batch.text or batch.paired
        device = None if part is None else getattr(part, "feat_lens", getattr(part, "token_lens", None)).device
        # What depends on the step number enters as tensors (filled on the device, no copy): `losses`
        # then sees the same inputs every step, so torch.compile compiles it once per batch shape.
        temperature = torch.full((), self.objective.quantizer.temperature(step), device=device)
        ramp = torch.full((), self.objective.mlm_ramp.at(step), device=device)
        return self.losses(batch, temperature, ramp)

    def losses(self, batch: PretrainBatch, temperature: torch.Tensor, ramp: torch.Tensor) -> dict[str, torch.Tensor]:
        """forward() with the Gumbel temperature and the masked-prediction ramp of the step given."""
        out: dict[str, torch.Tensor] = {}
        if batch.speech is not None:
            out.update(self.speech_losses(batch.speech, temperature=temperature))
        if batch.text is not None and self.uses_text:
            out.update(self.text_losses(batch.text))
        if batch.paired is not None and self.uses_text:
            out.update(self.paired_losses(batch.paired))
        terms = [self.weights[k] * (ramp if k in CODE_PREDICTION else 1.0) * v
                 for k, v in out.items() if k in self.weights]
        if not terms:
            raise ValueError(f"the batch has no part that variant {self.objective.variant!r} trains on")
        out["loss"] = torch.stack(terms).sum()
        return out

    def compile_losses(self) -> None:
        """torch.compile each part's losses (speech, text, paired) on its own: one graph per shape of
        that part, so with data.static_shapes a few dozen per epoch rather than one per combination.
        CTC's recursion stays eager (torch.compiler.disable)."""
        for name in ("speech_losses", "text_losses", "paired_losses"):
            setattr(self, name, torch.compile(getattr(self, name), dynamic=False))

    # --- unlabeled speech: w2v-BERT
    def speech_losses(self, part: SpeechPart, step: int = 0,
                      temperature: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        enc, quant, obj = self.encoder, self.quantizer, self.objective
        x, lens = enc.speech_features(part.feats, part.feat_lens)
        valid = lengths_to_valid(lens, x.shape[1])
        mask = self.speech_masker.sample(lens, x.shape[1])
        q_logits = quant.logits(x, valid)  # unmasked features
        ids = self._targets(part.feats, q_logits)  # [B, T, G]
        div, ppl = diversity_loss(q_logits, valid)
        hidden = enc.speech_stack(self.speech_masker.replace(x, mask), lens)
        top = enc.shared(hidden, lens)

        temp = obj.quantizer.temperature(step) if temperature is None else temperature
        dist = sample_distractors(mask, obj.contrastive.distractors)
        context = self.contrastive_proj(gather_steps(hidden, dist.positions))
        targets, codes = quant.quantize(gather_steps(q_logits, dist.positions), temp)
        con, con_acc = contrastive_loss(context, targets, dist, obj.contrastive.temperature, codes)
        mlm, mlm_acc = self._code_prediction(top, mask, ids)
        codes_n = obj.quantizer.codes
        usage, top_share = target_usage(ids, codes_n, valid)
        out = {"w2v_contrastive": con, "w2v_diversity": div, "w2v_mlm": mlm,
               "w2v_contrastive_acc": con_acc, "w2v_mlm_acc": mlm_acc,
               "w2v_mlm_majority_acc": majority_accuracy(ids, codes_n, mask), "code_perplexity": ppl,
               "target_perplexity": usage, "target_top_share": top_share,
               "speech_mask_frac": (mask.sum() / valid.sum().clamp(min=1)).detach(),
               "gumbel_temp": torch.as_tensor(temp).detach()}
        if top.shape[0] > 1:
            out["utterance_spread"] = utterance_spread(top, valid)
        return out

    def _targets(self, feats: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
        """The masked-prediction ids [B, T, G]: the quantiser's argmax, or the frozen random projection's."""
        if self.target_quantizer is None:
            return self.quantizer.ids(q_logits)
        return self.target_quantizer.ids(feats, q_logits.shape[1])

    def _code_prediction(self, top, mask, ids):
        """Predict the code ids [B, T, G] at the masked frames `mask` [B, T] (the head runs on every frame:
        selecting the masked ones would give a shape that depends on the data)."""
        logits = self.speech_mlm_head(top)  # [B, T, G*V]
        v = self.objective.quantizer.codes
        g = ids.shape[-1]
        return masked_cross_entropy(logits.unflatten(-1, (g, v)), ids, mask[..., None].expand_as(ids))

    # --- unlabeled text: span MLM on characters
    def text_losses(self, part: TextPart) -> dict[str, torch.Tensor]:
        tokens, mask = self.text_masker(part.tokens, part.token_lens)
        top = self.encoder.encode_text(tokens, part.token_lens)
        loss, acc = masked_cross_entropy(self.text_mlm_head(top), part.tokens, mask)
        return {"text_mlm": loss, "text_mlm_acc": acc, "text_mask_frac": self._frac(mask, part.token_lens)}

    # --- paired speech-text: TLM on [masked speech ; masked text], CTC on the speech alone
    def paired_losses(self, part: PairedPart) -> dict[str, torch.Tensor]:
        enc = self.encoder
        x, lens = enc.speech_features(part.feats, part.feat_lens)
        smask = self.tlm_speech_masker.sample(lens, x.shape[1])
        with torch.no_grad():
            ids = self._targets(part.feats, self.quantizer.logits(x, lengths_to_valid(lens, x.shape[1])))
        hidden = enc.speech_stack(self.tlm_speech_masker.replace(x, smask), lens)
        tokens, tmask = self.tlm_text_masker(part.tokens, part.token_lens)
        s_out, t_out = enc.shared_paired(hidden, lens, enc.embed_text(tokens), part.token_lens)
        tlm_speech, s_acc = self._code_prediction(s_out, smask, ids)
        tlm_text, t_acc = masked_cross_entropy(self.text_mlm_head(t_out), part.tokens, tmask)
        out = {"tlm_speech": tlm_speech, "tlm_text": tlm_text, "tlm_speech_acc": s_acc, "tlm_text_acc": t_acc,
               "tlm_speech_majority_acc": majority_accuracy(ids, self.objective.quantizer.codes, smask),
               "tlm_speech_mask_frac": self._frac(smask, lens),
               "tlm_text_mask_frac": self._frac(tmask, part.token_lens)}
        if self.uses_ctc:  # unmasked speech, whole encoder, no transcript in the input
            top = enc.shared(enc.speech_stack(x, lens), lens)
            out["ctc"] = ctc_loss(self.ctc_head(top), lens, part.tokens, part.token_lens,
                                  blank=self.model_cfg.blank_id, lengths_on_device=self.ctc_on_device)
        return out

    @staticmethod
    def _frac(mask, lens):
        return (mask.sum() / lens.sum().clamp(min=1)).detach()


def code_counts(ids: torch.Tensor, codes: int | None = None, where: torch.Tensor | None = None) -> torch.Tensor:
    """Histogram of code ids [..., G] over the positions `where` [...] (all when None) -> float [G, codes].
    `codes` None: the largest id + 1 (asks the device; the training step passes the codebook size)."""
    flat = ids.reshape(-1, ids.shape[-1])  # [N, G]
    if codes is None:
        codes = int(flat.max()) + 1 if flat.numel() else 1
    w = (torch.ones(flat.shape[0], device=ids.device) if where is None else where.reshape(-1).float())
    counts = torch.zeros(flat.shape[1], codes, device=ids.device)
    return counts.scatter_add_(1, flat.T, w[None, :].expand(flat.shape[1], -1))


def majority_accuracy(ids: torch.Tensor, codes: int | None = None, where: torch.Tensor | None = None) -> torch.Tensor:
    """The masked-prediction accuracy of always predicting each group's commonest target: ids [..., G]
    at the positions `where` -> the share of that code, averaged over groups (0 with no position). A
    model at this accuracy predicts the marginal."""
    counts = code_counts(ids, codes, where)
    return (counts.max(-1).values / counts.sum(-1).clamp(min=1)).mean()


def target_usage(ids: torch.Tensor, codes: int | None = None,
                 where: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """How many codes the targets use: ids [..., G] over the real frames `where` -> (perplexity of the
    code histogram summed over groups, as `code_perplexity` is for the softmax; share of the commonest
    code, averaged over groups). A collapsed codebook: perplexity G, share 1. No frame: (0, 0)."""
    counts = code_counts(ids, codes, where)
    total = counts.sum(-1, keepdim=True)
    p = counts / total.clamp(min=1)
    perplexity = torch.exp(-torch.special.xlogy(p, p).sum(-1))
    any_frame = total[:, 0] > 0
    return torch.where(any_frame, perplexity, 0.0).sum(), p.max(-1).values.mean()


def frame_spread(top: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """How much the encoder's output differs between frames (of all utterances together): the standard
    deviation over real frames over the mean magnitude, averaged over dimensions (detached). Near 0 when
    every frame gives the same vector."""
    with torch.no_grad():
        frames = top[valid].float()
        return frames.std(0).mean() / frames.abs().mean().clamp(min=1e-8)


def utterance_spread(top: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """How much the encoder's mean-pooled output differs between the utterances of a batch: the
    standard deviation across utterances over the mean magnitude, averaged over dimensions (detached).
    A collapse alarm: near 0 when every input gives the same utterance vector, which leaves nothing for
    a classifier or decoder to fine-tune on (a random-init encoder gives about 0.2)."""
    with torch.no_grad():
        pooled = masked_mean(top, valid).float()
        rows = valid.any(1).float()[:, None]  # empty rows (static-shape padding) are left out
        n = rows.sum()
        mean = (pooled * rows).sum(0) / n.clamp(min=1)
        std = (((pooled - mean) ** 2 * rows).sum(0) / (n - 1).clamp(min=1)).sqrt()
        return std.mean() / ((pooled.abs() * rows).sum(0) / n.clamp(min=1)).mean().clamp(min=1e-8)


def parameter_groups(model: PretrainModel) -> dict[str, int]:
    """Parameter counts per part (what `mslam.bin.model_info` prints)."""
    parts = {"speech_frontend": model.encoder.speech_frontend, "text_frontend": model.encoder.text_frontend,
             "speech_stack": model.encoder.speech_layers, "shared_stack": model.encoder.shared_layers,
             "quantizer": model.quantizer}
    counts: dict[str, int] = {}
    seen: set[int] = set()
    for name, module in parts.items():
        n = 0
        if module is not None:
            for p in module.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    n += p.numel()
        counts[name] = n
    counts["heads"] = 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            counts["heads"] += p.numel()
    counts["total"] = sum(counts.values())
    return counts
