"""Helpers for the model tests (a uniquely named module: test directories have no __init__.py)."""
from __future__ import annotations

import subprocess

import torch

# (espeak-ng voice, text): a handful of short number words in a few languages
UTTERANCES = [
    ("de", "zweiundvierzig"),
    ("de", "dreizehn"),
    ("de", "hundert eins"),
    ("en", "forty two"),
    ("fr", "quarante deux"),
    ("es", "cuarenta y dos"),
]
SPECIALS = ["<blank>", "<pad>", "<unk>", "<mask>", "<s>", "</s>"]  # ids 0..5
PAD_ID = 1


def char_vocab(texts):
    """Specials 0..5, then the characters in sorted order."""
    chars = sorted({c for t in texts for c in t})
    return {c: i + len(SPECIALS) for i, c in enumerate(chars)}


def synthesize(voice: str, text: str, path) -> torch.Tensor:
    """espeak-ng -> 16 kHz waveform in [-1, 1]."""
    import soundfile as sf
    import torchaudio

    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    wave, rate = sf.read(str(path), dtype="float32")
    wave = torch.from_numpy(wave)
    if wave.dim() > 1:
        wave = wave.mean(-1)
    return torchaudio.functional.resample(wave, rate, 16000)


def fbank(wave: torch.Tensor) -> torch.Tensor:
    import torchaudio

    return torchaudio.compliance.kaldi.fbank(wave[None] * 32768, num_mel_bins=80, sample_frequency=16000)


def pad_batch(seqs, pad_value=0.0):
    """List of [T_i, ...] -> ([B, T_max, ...], lengths [B])."""
    lens = torch.tensor([s.shape[0] for s in seqs])
    out = torch.full((len(seqs), int(lens.max()), *seqs[0].shape[1:]), pad_value, dtype=seqs[0].dtype)
    for i, s in enumerate(seqs):
        out[i, : s.shape[0]] = s
    return out, lens
