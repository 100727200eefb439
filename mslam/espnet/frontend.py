"""`frontend: mslam_fbank`: mslam's own 80-d Kaldi-compatible log-mel fbank, as an ESPnet frontend.

ESPnet's default frontend computes a different log-mel (its own STFT, window and mel scale), so an
mslam encoder fed by it would see features unlike those it was pre-trained on. This frontend runs
`mslam.data.features.fbank` on each waveform of the batch (raw 16 kHz audio in [-1, 1], as ESPnet's
`sound` reader gives it): the same numbers as mslam's feature dumps and on-the-fly features. It has
no parameters. Global CMVN is not done here but in the encoder (`encoder: mslam`), with the
statistics of pre-training, so ESPnet's SpecAugment sees the same kind of features as usual
(log-mel before normalisation).
"""
from __future__ import annotations

import humanfriendly
import torch
from espnet2.asr.frontend.abs_frontend import AbsFrontend

from mslam.data.features import FbankConfig, fbank, num_frames


class MslamFbankFrontend(AbsFrontend):
    """Raw waveform [B, S] (+ lengths in samples) -> mslam fbank [B, T, n_mels] (+ lengths in frames)."""

    def __init__(self, fs: int | str = 16000, n_mels: int = 80):
        super().__init__()
        rate = humanfriendly.parse_size(fs) if isinstance(fs, str) else int(fs)
        if rate != 16000:
            raise ValueError(f"mslam_fbank: fs={fs}: mslam encoders are pre-trained on 16 kHz features; "
                             "resample the data to 16 kHz (asr.sh --fs 16k)")
        self.cfg = FbankConfig(num_mel_bins=n_mels, sample_rate=rate)

    def output_size(self) -> int:
        return self.cfg.num_mel_bins

    def forward(self, input: torch.Tensor, input_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if input.dim() != 2:
            raise ValueError(f"mslam_fbank: expected single-channel waveforms [batch, samples], "
                             f"got shape {tuple(input.shape)}")
        lengths = [num_frames(int(n), self.cfg) for n in input_lengths]
        feats = input.new_zeros(input.shape[0], max(max(lengths, default=0), 1), self.cfg.num_mel_bins,
                                dtype=torch.float32)
        for b, (n, frames) in enumerate(zip(input_lengths, lengths)):
            if frames:  # shorter than one 25 ms window: no frame (length 0)
                feats[b, :frames] = fbank(input[b, :int(n)], self.cfg)
        return feats, torch.tensor(lengths, dtype=torch.long, device=input.device)
