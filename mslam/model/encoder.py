"""The joint speech-text encoder of mSLAM.

speech: log-mel -> SpeechFrontEnd -> N speech-only Conformer layers -> M shared layers
text:   characters -> TextFrontEnd ----------------------------------> M shared layers
paired: [speech after the N layers ; text embeddings], packed per example -> M shared layers
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from mslam.model.conformer import ConformerStack, dropout, lengths_to_valid, sinusoidal_positions
from mslam.model.frontend import SpeechFrontEnd, TextFrontEnd


@dataclass
class FrontEndConfig:
    feat_dim: int = 80
    conv_channels: int = 128
    subsampling: int = 4  # frames per encoder frame: 4 (40 ms, the paper's) or 2 (20 ms)


@dataclass
class EncoderConfig:
    d_model: int = 256
    ffn_dim: int = 1024
    heads: int = 4
    speech_layers: int = 2
    shared_layers: int = 4
    conv_kernel: int = 5
    conv_norm: Literal["group", "batch", "layer"] = "group"
    conv_norm_groups: int = 1
    dropout: float = 0.1
    attn_dropout: float = 0.0
    layer_drop: float = 0.0
    speech_pos: Literal["none", "sinusoidal"] = "none"

    def __post_init__(self):
        if self.d_model % self.heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by heads {self.heads}")
        if self.conv_norm == "group" and self.d_model % self.conv_norm_groups:
            raise ValueError(f"conv_norm_groups {self.conv_norm_groups} does not divide d_model {self.d_model}")


@dataclass
class ModelConfig:
    vocab_size: int = 4096
    blank_id: int = 0
    pad_id: int = 1
    unk_id: int = 2
    mask_id: int = 3
    num_special: int = 6  # ids below this are specials; random replacements draw from [num_special, vocab_size)
    frontend: FrontEndConfig = field(default_factory=FrontEndConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)


class JointEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig, with_text: bool = True):
        super().__init__()
        e = cfg.encoder
        self.cfg = cfg
        self.d_model = e.d_model
        self.dropout = e.dropout
        self.speech_pos = e.speech_pos
        self.speech_frontend = SpeechFrontEnd(cfg.frontend.feat_dim, cfg.frontend.conv_channels, e.d_model,
                                              cfg.frontend.subsampling)
        self.text_frontend = TextFrontEnd(cfg.vocab_size, e.d_model, cfg.pad_id) if with_text else None
        block = dict(d_model=e.d_model, ffn_dim=e.ffn_dim, heads=e.heads, conv_kernel=e.conv_kernel,
                     conv_norm=e.conv_norm, conv_norm_groups=e.conv_norm_groups, dropout=e.dropout,
                     attn_dropout=e.attn_dropout)
        self.speech_layers = ConformerStack(e.speech_layers, e.layer_drop, **block)
        self.shared_layers = ConformerStack(e.shared_layers, e.layer_drop, **block)

    # -- pieces (the pre-training losses tap the middle of the stack) --
    def speech_features(self, feats: torch.Tensor, lengths: torch.Tensor):
        """Front-end output (unmasked; the quantiser's input) and its lengths."""
        return self.speech_frontend(feats, lengths)

    def speech_stack(self, x: torch.Tensor, lengths: torch.Tensor, collect: list | None = None) -> torch.Tensor:
        """(Possibly masked) front-end output -> output of the N speech-only layers."""
        if self.speech_pos == "sinusoidal":
            x = x + sinusoidal_positions(x.shape[1], x.shape[-1], x.device, x.dtype)
        return self.speech_layers(dropout(x, self.dropout, self.training), lengths, collect)

    def embed_text(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.text_frontend is None:
            raise RuntimeError("this encoder was built without a text front end (variant w2v-bert)")
        return dropout(self.text_frontend(tokens), self.dropout, self.training)

    def shared(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.shared_layers(x, lengths)

    def shared_paired(self, speech: torch.Tensor, speech_lens: torch.Tensor, text: torch.Tensor,
                      text_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run [speech ; text] through the shared layers; return the speech and text parts.

        Each example is packed without a gap (its speech frames, then its characters, then padding),
        so the depthwise convolution at the seam sees the same neighbours whatever the padding.
        """
        joint, joint_lens = pack_pair(speech, speech_lens, text, text_lens)
        out = self.shared_layers(joint, joint_lens)
        return unpack_pair(out, speech.shape[1], speech_lens, text.shape[1])

    # -- whole paths --
    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unmasked speech through the whole encoder: ([B, T', D] top-layer output, lengths')."""
        x, lens = self.speech_features(feats, lengths)
        return self.shared(self.speech_stack(x, lens), lens), lens

    def hidden_states(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Unmasked speech: [front-end output, then each Conformer layer's output] and the lengths
        (linear probes read the layers; padded positions are not zeroed)."""
        x, lens = self.speech_features(feats, lengths)
        states = [x]
        self.shared_layers(self.speech_stack(x, lens, states), lens, states)
        return states, lens

    def encode_text(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.shared(self.embed_text(tokens), lengths)

    def encode_paired(self, feats, feat_lens, tokens, token_lens):
        """Unmasked pair -> (speech part [B, T', D], speech lengths, text part [B, L, D])."""
        x, lens = self.speech_features(feats, feat_lens)
        s, t = self.shared_paired(self.speech_stack(x, lens), lens, self.embed_text(tokens), token_lens)
        return s, lens, t


def pack_pair(speech, speech_lens, text, text_lens):
    """[B,Ts,D] + [B,Lt,D] -> [B, Ts+Lt, D] with example b = speech[:ts_b] ++ text[:lt_b] ++ 0."""
    ts = speech.shape[1]
    joint_lens = speech_lens + text_lens
    total = max(ts + text.shape[1], 1)  # from the shapes, not the lengths: nothing waits for the device
    j = torch.arange(total, device=speech.device)[None, :]
    src = torch.where(j < speech_lens[:, None], j, ts + j - speech_lens[:, None])
    src = src.clamp(max=ts + text.shape[1] - 1)
    both = torch.cat([speech, text], dim=1)
    joint = torch.gather(both, 1, src[..., None].expand(-1, -1, both.shape[-1]))
    joint = joint.masked_fill(~lengths_to_valid(joint_lens, total)[..., None], 0.0)
    return joint, joint_lens


def unpack_pair(joint, ts: int, speech_lens, lt: int):
    """Inverse of pack_pair: ([B, ts, D] speech part, [B, lt, D] text part); padding is garbage-free
    only where the lengths say so (callers index real positions)."""
    total = joint.shape[1]
    if total < ts:
        joint = F.pad(joint, (0, 0, 0, ts - total))
        total = ts
    speech = joint[:, :ts]
    idx = (speech_lens[:, None] + torch.arange(lt, device=joint.device)[None, :]).clamp(max=total - 1)
    text = torch.gather(joint, 1, idx[..., None].expand(-1, -1, joint.shape[-1]))
    return speech, text
