"""Audio loading for wav.scp entries: file paths (wav/flac/ogg/mp3 through soundfile), Kaldi
pipes (`cmd |`) and ark offsets (`foo.ark:123`), cut to a segment and resampled to 16 kHz.

Every failure raises AudioError naming the utterance and the entry, never a traceback from
inside a decoder.
"""
from __future__ import annotations

import functools
import io
import os
import subprocess
from pathlib import Path

import numpy as np
import soundfile

from mslam.data.kaldi import Segment

# torch and torchaudio are imported where resampling and tensors are needed: reading and checking audio
# (data_dir validate --add-durations, corpus preparation) starts in a fraction of the time without them.

SAMPLE_RATE = 16000


class AudioError(ValueError):
    """An utterance's audio cannot be used; the message names the utterance and the entry."""


def _read_bytes_or_path(entry: str, utt: str):
    """Return what soundfile/kaldiio can open for a wav.scp entry."""
    entry = entry.strip()
    if entry.endswith("|"):
        cmd = entry[:-1].strip()
        proc = subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise AudioError(f"utterance '{utt}': command '{cmd}' exited with {proc.returncode}"
                             + (f": {err[-1]}" if err else ""))
        if not proc.stdout:
            raise AudioError(f"utterance '{utt}': command '{cmd}' wrote no audio")
        return io.BytesIO(proc.stdout)
    path = Path(entry)
    if not path.is_file():
        raise AudioError(f"utterance '{utt}': audio file '{entry}' not found")
    return str(path)


def read_audio(entry: str, utt: str = "?", segment: Segment | None = None) -> tuple[np.ndarray, int]:
    """Read a wav.scp entry (cut to `segment`) as float32 mono samples in [-1, 1] and its sample rate.

    Multi-channel audio is averaged to mono (as ESPnet does for single-channel models). A segment of
    a plain file is read on its own (hour-long session recordings are not decoded per utterance).
    """
    is_ark = ".ark:" in entry and not entry.rstrip().endswith("|")
    if is_ark:
        import kaldiio
        try:
            rate, samples = kaldiio.load_mat(entry.strip())
        except Exception as e:  # kaldiio raises a variety of types for a bad offset
            raise AudioError(f"utterance '{utt}': cannot read '{entry}': {e}") from None
        samples = np.asarray(samples)
        if samples.dtype == np.int16:
            samples = samples.astype(np.float32) / 32768.0
    else:
        source = _read_bytes_or_path(entry, utt)
        missing = wav_bytes_missing(source)
        if missing:
            raise AudioError(f"utterance '{utt}': '{entry}' is cut short: its WAV header promises {missing} "
                             "more bytes of samples than the file holds (an interrupted copy?)")
        try:
            if segment is not None and isinstance(source, str):
                info = soundfile.info(source)
                start, stop = _segment_samples(segment, info.samplerate, info.frames, entry, utt)
                samples, rate = soundfile.read(source, start=start, stop=stop, dtype="float32", always_2d=True)
                segment = None   # cut already
            else:
                samples, rate = soundfile.read(source, dtype="float32", always_2d=True)
        except AudioError:
            raise
        except Exception as e:  # soundfile.LibsndfileError and RuntimeError for truncated streams
            raise AudioError(f"utterance '{utt}': cannot decode '{entry}': {e}") from None
        samples = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    if segment is not None:
        start, stop = _segment_samples(segment, rate, len(samples), entry, utt)
        samples = samples[start:stop]
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if samples.size == 0:
        raise AudioError(f"utterance '{utt}': '{entry}' holds no samples (empty audio)")
    if not np.isfinite(samples).all():
        bad = int((~np.isfinite(samples)).sum())
        raise AudioError(f"utterance '{utt}': '{entry}' has {bad} NaN/inf sample(s)")
    return samples, int(rate)


def wav_bytes_missing(source) -> int:
    """Bytes a RIFF/WAV file's data chunk declares beyond the end of the file (0: complete, not a WAV,
    or a streamed WAV whose sizes are placeholders). libsndfile reads such a file without a word."""
    if isinstance(source, io.BytesIO):
        head, total = source.getvalue()[:4096], len(source.getvalue())
    else:
        with open(source, "rb") as f:
            head = f.read(4096)
        total = os.path.getsize(source)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return 0
    pos = 12
    while pos + 8 <= len(head):
        chunk, size = head[pos:pos + 4], int.from_bytes(head[pos + 4:pos + 8], "little")
        if chunk == b"data":
            if size == 0 or size >= 0x7FFF0000:  # placeholders of a stream that could not seek back
                return 0                              # (espeak-ng --stdout writes 0x7FFFFFFF-ish)
            return max(0, pos + 8 + size - total)
        pos += 8 + size + (size & 1)
    return 0


def _segment_samples(segment: Segment, rate: int, total: int, entry: str, utt: str) -> tuple[int, int]:
    start, stop = int(round(segment.start * rate)), int(round(segment.end * rate))
    if start >= total:
        raise AudioError(f"utterance '{utt}': segment starts at {segment.start:.2f} s but "
                         f"'{entry}' lasts {total / rate:.2f} s")
    return start, min(stop, total)


@functools.lru_cache(maxsize=16)
def _resampler(orig_rate: int, new_rate: int) -> "torchaudio.transforms.Resample":
    # The filter kernel is computed once per rate pair, not once per utterance.
    import torchaudio
    return torchaudio.transforms.Resample(orig_rate, new_rate)


def resample(samples: "torch.Tensor", orig_rate: int, new_rate: int = SAMPLE_RATE) -> "torch.Tensor":
    import torch
    if orig_rate == new_rate:
        return samples
    with torch.no_grad():
        return _resampler(orig_rate, new_rate)(samples)


def load_audio(entry: str, *, utt: str = "?", segment: Segment | None = None,
               sample_rate: int = SAMPLE_RATE, allow_resample: bool = True) -> torch.Tensor:
    """Load a wav.scp entry as a 1-D float32 tensor at `sample_rate` (cut to `segment` first)."""
    import torch
    samples, rate = read_audio(entry, utt, segment)
    wave = torch.from_numpy(samples)
    if rate != sample_rate:
        if not allow_resample:
            raise AudioError(f"utterance '{utt}': '{entry}' is at {rate} Hz; expected {sample_rate} Hz "
                             "(allow resampling or convert the corpus)")
        wave = resample(wave, rate, sample_rate)
        if segment is not None:  # cut at the source rate; make the length exact at the target rate
            wave = wave[:int(round((segment.end - segment.start) * sample_rate))]
    return wave
