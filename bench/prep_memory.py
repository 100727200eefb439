"""Peak memory of mC4 preparation on a synthetic mC4-like input of a given compressed size.

    python bench/prep_memory.py [--gzip-mb 2048] [--shards 8] [--keep DIR] [--json]

Writes `--shards` gzip'd JSON-line shards of one language (c4-de.tfrecord-*.json.gz, as mC4 lays them
out) holding about --gzip-mb MB in all: documents of 1-8 paragraphs of sentences made of seeded random
pseudo-words, so nearly every sentence is new to the de-duplication and the text compresses about as
much as real text does. Then a fresh process runs `python -m mslam.bin.prepare_mc4 prepare` on it and
reports its peak RSS (VmHWM of that process, read by itself at exit), the sentences kept, the bytes of
peak RSS per kept sentence above the interpreter's own, and the time taken.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WORDS = 50000
# prepare_mc4 in this process, then its own peak RSS (VmHWM: ru_maxrss would keep a parent's peak)
CHILD = ("import sys; from mslam.bin.prepare_mc4 import main; rc = main(sys.argv[1:]); "
         "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]; "
         "print('VMHWM_KB', hwm); sys.exit(rc)")
BASE = ("from mslam.bin.prepare_mc4 import main; "
        "print('VMHWM_KB', [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])")


def vocabulary(rng: np.random.Generator) -> np.ndarray:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyzäöüß"))
    lengths = rng.integers(2, 11, WORDS)
    return np.array(["".join(rng.choice(letters, n)) for n in lengths])


def write_shard(path: Path, target_bytes: int, words: np.ndarray, rng: np.random.Generator) -> None:
    """Documents until the compressed file reaches target_bytes; Zipf-like word frequencies."""
    p = 1.0 / np.arange(1, len(words) + 1)
    p /= p.sum()
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) as f:
        while raw.tell() < target_bytes:
            idx = rng.choice(len(words), size=20000, p=p)
            cuts = np.cumsum(rng.integers(6, 25, 2000))
            sentences = [" ".join(words[idx[a:b]]).capitalize() + "." for a, b in zip(cuts[:-1], cuts[1:])
                         if b <= len(idx)]
            lines = []
            for start in range(0, len(sentences), 12):
                paragraphs = [" ".join(sentences[k:k + 4]) for k in range(start, min(start + 12, len(sentences)), 4)]
                lines.append(json.dumps({"text": "\n".join(paragraphs), "timestamp": "2020-01-01T00:00:00Z",
                                         "url": "https://example.org/"}, ensure_ascii=False) + "\n")
            f.write("".join(lines).encode("utf-8"))


def make_input(root: Path, gzip_mb: float, shards: int, seed: int = 0) -> int:
    folder = root / "multilingual"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    words = vocabulary(rng)
    per_shard = int(gzip_mb * 2 ** 20 / shards)
    for i in range(shards):
        write_shard(folder / f"c4-de.tfrecord-{i:05d}-of-{shards:05d}.json.gz", per_shard, words, rng)
        print(f"  shard {i + 1}/{shards} written", file=sys.stderr, flush=True)
    return sum(p.stat().st_size for p in folder.iterdir())


def peak_kb(args: list[str]) -> tuple[int, str]:
    proc = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode != 0:
        raise SystemExit(f"prepare_mc4 failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    line = next(line for line in proc.stdout.splitlines() if line.startswith("VMHWM_KB"))
    return int(line.split()[1]), proc.stdout


def measure(root: Path) -> dict:
    shutil.rmtree(root / "out", ignore_errors=True)   # a finished language would be skipped as up to date
    base_kb, _ = peak_kb([sys.executable, "-c", BASE])
    t0 = time.perf_counter()
    kb, _ = peak_kb([sys.executable, "-c", CHILD, "prepare", "--root", str(root), "--out", str(root / "out"),
                     "--langs", "de", "--no-progress"])
    seconds = time.perf_counter() - t0
    stats = json.loads((root / "out" / "stats.json").read_text())["de"]["train"]
    return {"input_gzip_bytes": sum(p.stat().st_size for p in (root / "multilingual").iterdir()),
            "output_bytes": (root / "out" / "train" / "de.txt").stat().st_size,
            "sentences": stats["sentences"], "duplicates": stats["dropped"]["duplicate"],
            "peak_rss_mb": kb / 1024, "interpreter_rss_mb": base_kb / 1024,
            "bytes_per_sentence": (kb - base_kb) * 1024 / max(stats["sentences"], 1), "seconds": seconds}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gzip-mb", type=float, default=2048)
    p.add_argument("--shards", type=int, default=8)
    p.add_argument("--keep", type=Path, help="write the input here and keep it (default: a temporary dir)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        if not (root / "multilingual").is_dir():
            t0 = time.perf_counter()
            make_input(root, args.gzip_mb, args.shards)
            print(f"input written in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        result = measure(root)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"input {result['input_gzip_bytes'] / 2 ** 20:.0f} MB gzip -> {result['output_bytes'] / 2 ** 20:.0f} MB "
          f"of {result['sentences']} sentences ({result['duplicates']} duplicates) in {result['seconds']:.0f} s")
    print(f"peak RSS {result['peak_rss_mb']:.0f} MB (interpreter {result['interpreter_rss_mb']:.0f} MB): "
          f"{result['bytes_per_sentence']:.0f} B per kept sentence")


if __name__ == "__main__":
    main()
