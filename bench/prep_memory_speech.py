"""Peak memory of the speech data preparation against the row count: VoxPopuli's unlabelled table to a
Kaldi data dir, and make_shards on a Kaldi data dir.

    python bench/prep_memory_speech.py [--rows 200000,2000000] [--utts 100000,1000000] [--rows-in-memory N]
                                       [--keep DIR] [--json]

voxpopuli: writes a synthetic annotations/unlabelled_v2.tsv.gz of --rows segments (plenary events of
five languages and two years, 1000 segments of 10 s each per event, seeded) and the audio the preparer
checks: one 1 Hz WAV of 12000 s (24 kB) hard-linked as every event's .ogg, so each recording's header
reads and outlasts its last segment without gigabytes of audio. Then a fresh process runs
`python -m mslam.bin.prepare_voxpopuli prepare --what unlabelled` (--nj 1: one process does all the work)
and reports its peak RSS (VmHWM, read by itself at exit) and the time taken.

make_shards: writes a Kaldi data dir of --utts utterances shaped like that output (segments of 1000
per recording, wav.scp, utt2spk, spk2utt, utt2lang) and runs `python -m mslam.bin.make_shards --kind
speech` on it in a fresh process, the same way.

Memory is bounded when the peak does not grow with the rows: the last column is each peak over the
first size's. --rows-in-memory sets the rows a shard sorts in memory before it writes a run to disk
(mslam.data.corpora.common.ROWS_IN_MEMORY); the test suite uses it to measure small inputs.
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
import soundfile

LANGS = ("de", "fr", "es", "pl", "it")
YEARS = ("2019", "2020")
PER_EVENT = 1000
SEGMENT_S = 10
AUDIO_S = PER_EVENT * SEGMENT_S + 2000
# The command in this process, then its own peak RSS (VmHWM: ru_maxrss would keep a parent's peak).
CHILD = ("import sys, runpy; import mslam.data.corpora.common as c; n = int(sys.argv.pop(1)); "
         "c.ROWS_IN_MEMORY = n or c.ROWS_IN_MEMORY; module = sys.argv.pop(1); sys.argv[0] = module; rc = 0\n"
         "try:\n    runpy.run_module(module, run_name='__main__')\nexcept SystemExit as e:\n    rc = e.code or 0\n"
         "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
         "print('VMHWM_KB', hwm); sys.exit(rc)")


def events(n_rows: int) -> list[tuple[str, str, str]]:
    """(event id, language, year) of the events that hold n_rows segments, languages and years in turn."""
    out = []
    for i in range((n_rows + PER_EVENT - 1) // PER_EVENT):
        lang, year = LANGS[i % len(LANGS)], YEARS[i // len(LANGS) % len(YEARS)]
        out.append((f"{year}{(i % 12) + 1:02d}{(i % 28) + 1:02d}-{i:06d}-PLENARY_{lang}", lang, year))
    return out


def write_voxpopuli(root: Path, n_rows: int, seed: int = 0) -> None:
    """The table (rows in the corpus's order: event by event) and one audio file linked per event."""
    rng = np.random.default_rng(seed)
    table = root / "annotations" / "unlabelled_v2.tsv.gz"
    table.parent.mkdir(parents=True, exist_ok=True)
    audio = root / "one_event.wav"
    soundfile.write(audio, np.zeros(AUDIO_S, dtype=np.int16), 1, format="WAV", subtype="PCM_16")
    left = n_rows
    with gzip.open(table, "wt", encoding="utf-8", compresslevel=1) as f:
        f.write("event_id\tsegment_no\tstart\tend\n")
        for event, lang, year in events(n_rows):
            n = min(PER_EVENT, left)
            left -= n
            starts = np.arange(n) * SEGMENT_S + rng.uniform(0, 1, n).round(2)
            ends = starts + rng.uniform(3, 9, n).round(2)
            f.write("".join(f"{event}\t{k}\t{s:.2f}\t{e:.2f}\n" for k, (s, e) in enumerate(zip(starts, ends))))
            ogg = root / "raw_audios" / lang / year / f"{event}.ogg"
            ogg.parent.mkdir(parents=True, exist_ok=True)
            os.link(audio, ogg)


def write_data_dir(d: Path, n_utts: int) -> None:
    """A data dir of n_utts segments, as prepare_voxpopuli writes it (sorted tables, spk2utt derived)."""
    d.mkdir(parents=True, exist_ok=True)
    recs = sorted(events(n_utts))
    names = ("segments", "utt2spk", "utt2lang", "wav.scp", "spk2utt")
    files = {name: open(d / name, "w", encoding="utf-8") for name in names}
    left = n_utts
    for event, lang, year in recs:
        n = min(PER_EVENT, left)
        left -= n
        utts = sorted(f"{event}_{k}" for k in range(n))   # sorted as strings, as Kaldi sorts them
        for utt in utts:
            start = int(utt.rsplit("_", 1)[1]) * SEGMENT_S
            files["segments"].write(f"{utt} {event} {start:.3f} {start + 5:.3f}\n")
            files["utt2spk"].write(f"{utt} {event}\n")
            files["utt2lang"].write(f"{utt} {lang}\n")
        files["wav.scp"].write(f"{event} /data/raw_audios/{lang}/{year}/{event}.ogg\n")
        files["spk2utt"].write(f"{event} {' '.join(utts)}\n")
    for f in files.values():
        f.close()


def peak_rss(module: str, args: list[str], rows_in_memory: int) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of `python -m module args` run in a fresh process."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(rows_in_memory), module, *args],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{module} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    kb = next(int(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("VMHWM_KB"))
    return kb / 1024, seconds


def measure_voxpopuli(work: Path, n_rows: int, rows_in_memory: int) -> dict:
    root = work / f"vox{n_rows}"
    if not (root / "annotations" / "unlabelled_v2.tsv.gz").is_file():
        shutil.rmtree(root, ignore_errors=True)
        write_voxpopuli(root, n_rows)
    out = work / f"vox{n_rows}_data"
    shutil.rmtree(out, ignore_errors=True)
    rss, seconds = peak_rss("mslam.bin.prepare_voxpopuli",
                            ["prepare", "--what", "unlabelled", "--root", str(root), "--out", str(out),
                             "--langs", ",".join(LANGS), "--years", ",".join(YEARS), "--nj", "1", "--no-progress"],
                            rows_in_memory)
    lines = sum(1 for _ in open(out / "train" / "segments", "rb"))
    assert lines == n_rows, (lines, n_rows)
    return {"rows": n_rows, "peak_rss_mb": round(rss, 1), "seconds": round(seconds, 1)}


def measure_make_shards(work: Path, n_utts: int, rows_in_memory: int) -> dict:
    d = work / f"dir{n_utts}"
    if not (d / "spk2utt").is_file():
        shutil.rmtree(d, ignore_errors=True)
        write_data_dir(d, n_utts)
    out = work / f"shards{n_utts}"
    shutil.rmtree(out, ignore_errors=True)
    rss, seconds = peak_rss("mslam.bin.make_shards", ["--kind", "speech", "--out", str(out), str(d)], rows_in_memory)
    index = json.loads((out / "index.json").read_text(encoding="utf-8"))
    assert sum(v["utterances"] for v in index["langs"].values()) == n_utts
    return {"utts": n_utts, "peak_rss_mb": round(rss, 1), "seconds": round(seconds, 1)}


def sizes(spec: str) -> list[int]:
    return [int(s) for s in spec.split(",") if s]


def report(name: str, unit: str, results: list[dict]) -> None:
    first = results[0]["peak_rss_mb"]
    for r in results:
        rss = r["peak_rss_mb"]
        print(f"{name:13s} {r[unit]:>9d} {unit:5s} peak RSS {rss:7.1f} MB ({rss / first:.2f}x)  {r['seconds']:6.1f} s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", default="200000,2000000", help="VoxPopuli table sizes (rows); empty: skip")
    p.add_argument("--utts", default="100000,1000000", help="make_shards data dir sizes (utterances); empty: skip")
    p.add_argument("--rows-in-memory", type=int, default=0, help="rows a shard sorts in memory (default: the module's)")
    p.add_argument("--keep", type=Path, help="keep the inputs in DIR (reused by the next run that names it)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    args = p.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="prep_memory_speech."))
    work.mkdir(parents=True, exist_ok=True)
    try:
        vox = [measure_voxpopuli(work, n, args.rows_in_memory) for n in sizes(args.rows)]
        shards = [measure_make_shards(work, n, args.rows_in_memory) for n in sizes(args.utts)]
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps({"voxpopuli_unlabelled": vox, "make_shards": shards}, indent=1))
    else:
        report("voxpopuli", "rows", vox) if vox else None
        report("make_shards", "utts", shards) if shards else None
    return 0


if __name__ == "__main__":
    sys.exit(main())
