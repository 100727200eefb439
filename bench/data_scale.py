"""Data at the paper's scale, simulated: shard sets of synthetic manifests (no audio) of growing size,
and what sampling from them costs in memory and time.

    python bench/data_scale.py [--sizes 10000,100000,1000000] [--json] [--compare-dirs 100000]

For each size: a shard set of that many speech utterances over 51 languages (Zipf-like sizes,
2-20 s) is written (mslam.data.shards.write_shards), then a fresh process builds the ShardSampler and
draws 1000 batches of one process's budget, reading each batch's records as collation would. It
reports that process's peak RSS (ru_maxrss), the time to the first batch (opening the set, building
the sampler, drawing and reading batch 1), batches per second after it, and languages per batch.
`--compare-dirs` measures today's path (data.<source>.format: dirs: a Record per utterance and a
SourceSampler) at the sizes up to the given one, for its bytes per utterance.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LANGS = 51                  # VoxPopuli + MLS + Common Voice + BABEL languages of the paper's speech
BATCH_FRAMES = 32000        # one process's padded frames per step (8 x 20 s with padding, as 0.6B's GPUs)
MAX_FRAMES = 2000


@dataclass
class BenchSource:
    """The budget fields ShardSampler reads from a SpeechSourceConfig (that module imports torch)."""
    temperature: float = 1.0
    batch_sequences: int = 0
    batch_frames: int = BATCH_FRAMES
    min_frames: int = 20
    max_frames: int = MAX_FRAMES

    def budget_units(self) -> int:
        return self.batch_frames

    def max_units(self) -> int:
        return self.max_frames


def synthetic_records(n: int, seed: int = 0):
    """n speech records over LANGS languages with n_l ~ 1/rank (the head language has about a fifth),
    lengths uniform over 2-20 s, generated in chunks (the writer reads them twice)."""
    from mslam.data.manifest import Record
    weights = 1.0 / np.arange(1, LANGS + 1)
    langs = [f"l{k:02d}" for k in range(LANGS)]

    def gen():
        rng = np.random.default_rng(seed)
        for start in range(0, n, 65536):
            m = min(65536, n - start)
            which = rng.choice(LANGS, size=m, p=weights / weights.sum())
            lengths = rng.integers(200, MAX_FRAMES + 1, size=m)
            for j in range(m):
                lang = langs[which[j]]
                yield Record(f"{lang}-{start + j:010d}", lang, int(lengths[j]),
                             wav=f"audio/{lang}/{start + j:010d}.flac")
    return gen


def peak_rss_mb() -> float:
    """This process image's peak RSS (VmHWM). Not ru_maxrss: exec keeps the larger of the old and the
    new image's peak there, and the old image of a child started by subprocess is the parent's."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure_shards(shard_dir: str, batches: int) -> dict:
    """Run in a fresh process: only this set's sampler in it."""
    from mslam.data.shards import ShardSampler, ShardSource
    rss_imports = peak_rss_mb()
    t0 = time.perf_counter()
    source = ShardSource([shard_dir], "speech")
    sampler = ShardSampler("speech", source, BenchSource(), seed=0, min_items=1, source_id=0)

    def batch(step: int) -> tuple[int, int]:
        idx = sorted(sampler.draw(step), key=lambda i: (sampler.lengths[i], i))
        records = [source.record(i) for i in idx]   # what collation reads (one process: all of it)
        return len(records), len({r.lang for r in records})

    batch(1)
    first = time.perf_counter() - t0
    t1 = time.perf_counter()
    sizes = [batch(step) for step in range(2, batches + 2)]
    rate = batches / (time.perf_counter() - t1)
    return {"peak_rss_mb": round(peak_rss_mb(), 1), "rss_after_imports_mb": round(rss_imports, 1),
            "first_batch_s": round(first, 3), "batches_per_s": round(rate, 1),
            "utterances_per_batch": round(float(np.mean([s[0] for s in sizes])), 1),
            "languages_per_batch": round(float(np.mean([s[1] for s in sizes])), 1), "shards": len(source.shards)}


def measure_dirs(shard_dir: str, batches: int) -> dict:
    """Today's path for comparison: every Record in memory, SourceSampler (one language per batch)."""
    from mslam.data.pretrain_data import SourceSampler, SpeechSourceConfig
    from mslam.data.shards import ShardSource
    rss_imports = peak_rss_mb()
    records = list(ShardSource([shard_dir], "speech"))
    sampler = SourceSampler("speech", records, SpeechSourceConfig(dirs=["x"], batch_frames=BATCH_FRAMES), 0, 1)
    for step in range(1, batches + 1):
        sampler.draw(step)
    # Its time is not comparable (the records are read from the shard set here, from a JSON-lines
    # cache in training), only its memory.
    return {"peak_rss_mb": round(peak_rss_mb(), 1), "rss_after_imports_mb": round(rss_imports, 1)}


def in_fresh_process(mode: str, shard_dir: Path, batches: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--measure", mode, str(shard_dir), "--batches", str(batches)],
                         check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def disk_bytes(d: Path) -> int:
    return sum(p.stat().st_size for p in d.rglob("*") if p.is_file())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--batches", type=int, default=1000)
    p.add_argument("--shard-size", type=int, default=10000)
    p.add_argument("--compare-dirs", type=int, default=0, help="also measure format: dirs up to this size")
    p.add_argument("--workdir", help="where the shard sets go (default: a temporary dir, removed)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--measure", nargs=2, metavar=("MODE", "DIR"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.measure:
        mode, d = args.measure
        print(json.dumps((measure_shards if mode == "shards" else measure_dirs)(d, args.batches)))
        return 0
    from mslam.data.shards import write_shards
    sizes = [int(s) for s in args.sizes.split(",")]
    results = {}
    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        for n in sizes:
            d = Path(work) / f"speech_{n}"
            t0 = time.perf_counter()
            write_shards(d, "speech", synthetic_records(n), shard_size=args.shard_size)
            row = {"write_s": round(time.perf_counter() - t0, 1), "disk_bytes_per_utt": round(disk_bytes(d) / n, 1),
                   **in_fresh_process("shards", d, args.batches)}
            if n <= args.compare_dirs:
                row["dirs"] = in_fresh_process("dirs", d, args.batches)
            results[n] = row
            if not args.json:
                print(f"{n:>9} utts: peak RSS {row['peak_rss_mb']:7.1f} MB (after imports "
                      f"{row['rss_after_imports_mb']:.1f}), first batch {row['first_batch_s']:.3f} s, "
                      f"{row['batches_per_s']:.0f} batches/s, {row['utterances_per_batch']} utts and "
                      f"{row['languages_per_batch']} languages per batch, {row['shards']} shards, "
                      f"{row['disk_bytes_per_utt']:.0f} B/utt on disk, written in {row['write_s']} s"
                      + (f"; format dirs: peak RSS {row['dirs']['peak_rss_mb']:.1f} MB (after imports "
                         f"{row['dirs']['rss_after_imports_mb']:.1f})" if "dirs" in row else ""), flush=True)
    # What the sampler adds to the process (peak less the RSS after imports, which varies by a few
    # MB from run to run on its own), and its growth per utterance from the smallest size to the largest.
    for r in results.values():
        r["sampler_rss_mb"] = round(r["peak_rss_mb"] - r["rss_after_imports_mb"], 1)
    lo, hi = min(sizes), max(sizes)
    summary = {"sizes": results, "peak_rss_ratio_largest_to_smallest": round(results[hi]["peak_rss_mb"] /
                                                                             results[lo]["peak_rss_mb"], 3)}
    if hi > lo:
        per_utt = max(results[hi]["sampler_rss_mb"] - results[lo]["sampler_rss_mb"], 0) * 2 ** 20 / (hi - lo)
        summary["sampler_rss_bytes_per_utt"] = round(per_utt, 2)
        summary["peak_rss_at_150M_gb_extrapolated"] = round((results[hi]["peak_rss_mb"] * 2 ** 20 + per_utt *
                                                             (150e6 - hi)) / 2 ** 30, 2)
    dirs = {n: r["dirs"] for n, r in results.items() if "dirs" in r}
    if dirs:
        n = max(dirs)
        summary["dirs_rss_bytes_per_utt"] = round((dirs[n]["peak_rss_mb"] - dirs[n]["rss_after_imports_mb"]) *
                                                  2 ** 20 / n, 1)
    summary["machine"] = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "python": platform.python_version()}
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(json.dumps({k: v for k, v in summary.items() if k != "sizes"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
