"""Feature extraction speed: mslam's fbank against torchaudio's `compliance.kaldi.fbank` and
librosa's log-mel spectrogram, on the same speech, in the same process, one thread.

    python bench/features.py [--seconds 60] [--repeats 5] [--json]

Prints each extractor's speed in multiples of real time per core, and the ratio to mslam.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import time

import librosa
import numpy as np
import torch
import torchaudio.compliance.kaldi as kaldi

from mslam.data.audio import resample
from mslam.data.features import fbank


def speech(seconds: float) -> torch.Tensor:
    """Real speech from espeak-ng (German numbers), repeated to `seconds` at 16 kHz."""
    text = " ".join(["dreihundertsiebenundzwanzig", "neunzehn", "viertausend"] * 4)
    raw = subprocess.run(["espeak-ng", "-v", "de", "--stdout", text], check=True, stdout=subprocess.PIPE).stdout
    samples = np.frombuffer(raw[44:], dtype=np.int16).astype(np.float32) / 32768.0  # 44-byte wav header
    wave = resample(torch.from_numpy(samples), 22050, 16000)
    reps = int(np.ceil(seconds * 16000 / wave.numel()))
    return wave.repeat(reps)[: int(seconds * 16000)].contiguous()


def extractors():
    return {
        "mslam.fbank": lambda w: fbank(w),
        "torchaudio.compliance.kaldi.fbank": lambda w: kaldi.fbank(w[None] * 32768, num_mel_bins=80,
                                                                    sample_frequency=16000, dither=0.0),
        "librosa.melspectrogram+log": lambda w: np.log(librosa.feature.melspectrogram(
            y=w.numpy(), sr=16000, n_fft=512, win_length=400, hop_length=160, n_mels=80, fmin=20) + 1e-6),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=60.0, help="audio length per run")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = p.parse_args()
    torch.set_num_threads(1)
    wave = speech(args.seconds)
    results = {}
    for name, fn in extractors().items():
        fn(wave[:16000])  # warm-up: caches, allocators
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn(wave)
            times.append(time.perf_counter() - t0)
        results[name] = args.seconds / statistics.median(times)
    base = results["mslam.fbank"]
    report = {"machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} thread",
              "torch": torch.__version__, "audio_seconds": args.seconds,
              "realtime_factor": results, "ratio_to_mslam": {k: v / base for k, v in results.items()}}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"fbank extraction, {args.seconds:.0f} s of speech, 1 thread, median of {args.repeats} ({report['machine']})")
    print(f"{'extractor':40s} {'x real time':>12s} {'vs mslam':>9s}")
    for name, rtf in results.items():
        print(f"{name:40s} {rtf:12.0f} {rtf / base:9.2f}")


if __name__ == "__main__":
    main()
