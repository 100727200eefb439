"""80-d log-mel filterbank features, numerically compatible with Kaldi's `compute-fbank-feats`
(25 ms Povey window, 10 ms shift, DC removal, pre-emphasis 0.97, 512-point FFT, power spectrum,
triangular filters on the mel scale 1127 ln(1 + f/700) from 20 Hz to Nyquist, snip-edges framing,
no dither), and global mean/variance statistics.

The whole utterance is framed with one strided view and transformed with one FFT and one matrix
product: no Python loop over frames. `bench/features.py` measures it against torchaudio's
`compliance.kaldi.fbank` and librosa.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from mslam.data.cmvn import CMVNStats  # noqa: F401  (imported from here by many modules)

FLOAT_EPS = torch.finfo(torch.float32).eps


@dataclass(frozen=True)
class FbankConfig:
    num_mel_bins: int = 80
    sample_rate: int = 16000
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    preemphasis: float = 0.97
    low_freq: float = 20.0
    high_freq: float = 0.0          # <= 0: offset from Nyquist, as in Kaldi
    # Kaldi computes on int16 sample values; waveforms here are floats in [-1, 1].
    input_scale: float = 32768.0

    @property
    def window_size(self) -> int:
        return int(self.sample_rate * self.frame_length_ms / 1000)

    @property
    def window_shift(self) -> int:
        return int(self.sample_rate * self.frame_shift_ms / 1000)

    @property
    def fft_size(self) -> int:
        return 1 << (self.window_size - 1).bit_length()


def _mel(freq):
    return 1127.0 * np.log1p(np.asarray(freq, dtype=np.float64) / 700.0)


@functools.lru_cache(maxsize=8)
def mel_filterbank(cfg: FbankConfig) -> torch.Tensor:
    """(fft_size // 2 + 1, num_mel_bins) matrix of triangular mel filters, Kaldi's definition."""
    nyquist = cfg.sample_rate / 2
    high = cfg.high_freq if cfg.high_freq > 0 else nyquist + cfg.high_freq
    if not 0 <= cfg.low_freq < high <= nyquist:
        raise ValueError(f"fbank: need 0 <= low_freq ({cfg.low_freq}) < high_freq ({high}) <= Nyquist ({nyquist})")
    mel_low, mel_high = _mel(cfg.low_freq), _mel(high)
    delta = (mel_high - mel_low) / (cfg.num_mel_bins + 1)
    left = mel_low + delta * np.arange(cfg.num_mel_bins)[:, None]
    center, right = left + delta, left + 2 * delta
    # Kaldi leaves out the Nyquist bin of the FFT; it keeps a zero weight.
    fft_mel = _mel(np.arange(cfg.fft_size // 2) * cfg.sample_rate / cfg.fft_size)[None, :]
    up = (fft_mel - left) / (center - left)
    down = (right - fft_mel) / (right - center)
    weights = np.clip(np.minimum(up, down), 0.0, None)
    weights = np.concatenate([weights, np.zeros((cfg.num_mel_bins, 1))], axis=1)
    return torch.from_numpy(weights.T.astype(np.float32)).contiguous()


@functools.lru_cache(maxsize=8)
def povey_window(size: int) -> torch.Tensor:
    return torch.hann_window(size, periodic=False, dtype=torch.float64).pow(0.85).float()


def num_frames(num_samples: int, cfg: FbankConfig = FbankConfig()) -> int:
    if num_samples < cfg.window_size:
        return 0
    return 1 + (num_samples - cfg.window_size) // cfg.window_shift


def fbank(wave: torch.Tensor, cfg: FbankConfig = FbankConfig()) -> torch.Tensor:
    """Log-mel filterbank of a 1-D float waveform in [-1, 1] at cfg.sample_rate: (frames, bins)."""
    if wave.dim() != 1:
        raise ValueError(f"fbank: expected a 1-D waveform, got shape {tuple(wave.shape)}")
    n = num_frames(wave.numel(), cfg)
    if n == 0:
        raise ValueError(f"fbank: {wave.numel()} samples are shorter than one {cfg.frame_length_ms} ms window")
    with torch.no_grad():
        frames = wave.float().unfold(0, cfg.window_size, cfg.window_shift) * cfg.input_scale
        frames = frames - frames.mean(dim=1, keepdim=True)
        # Pre-emphasis with Kaldi's convention for the first sample: x[0] -= k * x[0].
        previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
        frames = (frames - cfg.preemphasis * previous) * povey_window(cfg.window_size)
        spectrum = torch.fft.rfft(frames, n=cfg.fft_size)
        power = spectrum.real.square() + spectrum.imag.square()
        mel = power @ mel_filterbank(cfg)
        return mel.clamp_min(FLOAT_EPS).log()


def load_features(utt, cfg: FbankConfig = FbankConfig()) -> torch.Tensor:
    """Features of a data-dir Utterance: read from feats.scp when it has one, else computed on
    the fly from its audio. Both paths give the same numbers (tested)."""
    from mslam.data.audio import AudioError, load_audio
    if utt.feats is not None:
        import kaldiio
        try:
            return torch.from_numpy(np.array(kaldiio.load_mat(utt.feats), dtype=np.float32))
        except Exception as e:  # kaldiio: FileNotFoundError, ValueError, bare AssertionError, ...
            raise AudioError(f"utterance '{utt.id}': feats.scp entry '{utt.feats}' cannot be read "
                             f"({e.__class__.__name__}: {e}); dump the features again") from None
    if utt.wav is None:
        raise AudioError(f"utterance '{utt.id}': no wav.scp or feats.scp entry")
    wave = load_audio(utt.wav, utt=utt.id, segment=utt.segment, sample_rate=cfg.sample_rate)
    if num_frames(wave.numel(), cfg) == 0:
        raise AudioError(f"utterance '{utt.id}': {wave.numel() / cfg.sample_rate * 1000:.1f} ms of audio is "
                         f"shorter than one {cfg.frame_length_ms} ms analysis window")
    return fbank(wave, cfg)
