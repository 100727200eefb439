"""Peak memory of mC4 preparation on a synthetic mC4-like input of a given compressed size.

    python bench/prep_memory.py [--gzip-mb 2048] [--shards 8] [--level 6] [--keep DIR] [--input-only] [--json]

Writes `--shards` gzip'd JSON-line shards of one language (c4-de.tfrecord-*.json.gz, as mC4 lays them
out) holding about --gzip-mb MB in all: documents of 1-8 paragraphs of 1-6 sentences of 6-24 seeded
random pseudo-words, so nearly every sentence is new to the de-duplication and the text compresses
about as much as real text does (2.6x at gzip level 6, 2.3x at level 1). With --keep the input stays
in DIR and is reused by the next run that names it. Then a fresh process runs `python -m mslam.bin.prepare_mc4 prepare` on it and
reports its peak RSS (VmHWM of that process, read by itself at exit), the sentences kept, the bytes of
peak RSS per kept sentence above the interpreter's own, and the time taken.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

WORDS = 50000
TOKENS_PER_BLOCK = 1 << 19
TAIL = '", "timestamp": "2020-01-01T00:00:00Z", "url": "https://example.org/"}\n'   # as json.dumps lays it out
# The forms of a word; a token's form says where it stands in its sentence, paragraph and document.
PLAIN, FIRST, LAST, PARAGRAPH_END, DOCUMENT_END, DOCUMENT_START = range(6)
FORMS = [lambda w: w + " ", lambda w: w.capitalize() + " ", lambda w: w + ". ", lambda w: w + ".\\n",
         lambda w: w + "." + TAIL, lambda w: '{"text": "' + w.capitalize() + " "]
# prepare_mc4 in this process, then its own peak RSS (VmHWM: ru_maxrss would keep a parent's peak)
CHILD = ("import sys; from mslam.bin.prepare_mc4 import main; rc = main(sys.argv[1:]); "
         "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]; "
         "print('VMHWM_KB', hwm); sys.exit(rc)")
BASE = ("from mslam.bin.prepare_mc4 import main; "
        "print('VMHWM_KB', [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])")


def vocabulary(rng: np.random.Generator) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyzäöüß"))
    lengths = rng.integers(2, 11, WORDS)
    return ["".join(rng.choice(letters, n)) for n in lengths]


class TextMaker:
    """Blocks of JSON lines of documents made of Zipf-distributed words, assembled by numpy: every form
    of every word is a piece of one byte table, and a block is a gather of pieces (joining strings in
    Python made writing the input slower than preparing it)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        pieces = [form(word).encode("utf-8") for form in FORMS for word in vocabulary(rng)]
        self.lengths = np.array([len(piece) for piece in pieces], dtype=np.int64)
        self.offsets = np.cumsum(self.lengths) - self.lengths
        self.table = np.frombuffer(b"".join(pieces), dtype=np.uint8)
        frequency = 1.0 / np.arange(1, WORDS + 1)
        self.cdf = np.cumsum(frequency / frequency.sum())

    def forms(self) -> np.ndarray:
        """The form of each token of whole documents: sentences of 6-24 words, paragraphs of 1-6
        sentences, documents of 1-8 paragraphs."""
        n = TOKENS_PER_BLOCK // 12
        lengths = self.rng.integers(6, 25, n)
        paragraph_ends = np.cumsum(self.rng.integers(1, 7, n)) - 1      # a paragraph's last sentence
        paragraph_ends = paragraph_ends[paragraph_ends < n]
        document_ends = np.cumsum(self.rng.integers(1, 9, n)) - 1       # a document's last paragraph
        document_ends = paragraph_ends[document_ends[document_ends < len(paragraph_ends)]]
        ends = np.cumsum(lengths[:document_ends[-1] + 1])               # whole documents only
        starts = np.concatenate([[0], ends[:-1]])
        forms = np.full(ends[-1], PLAIN)
        forms[starts] = FIRST
        forms[ends - 1] = LAST
        forms[ends[paragraph_ends[paragraph_ends <= document_ends[-1]]] - 1] = PARAGRAPH_END
        forms[ends[document_ends] - 1] = DOCUMENT_END
        forms[starts[np.concatenate([[0], document_ends[:-1] + 1])]] = DOCUMENT_START
        return forms

    def block(self) -> bytes:
        forms = self.forms()
        pieces = forms * WORDS + np.searchsorted(self.cdf, self.rng.random(len(forms)))
        lengths = self.lengths[pieces]
        out_starts = np.cumsum(lengths) - lengths
        source = np.repeat(self.offsets[pieces] - out_starts, lengths) + np.arange(out_starts[-1] + lengths[-1])
        return self.table[source].tobytes()


def write_shard(path: Path, target_bytes: int, maker: TextMaker, level: int) -> None:
    """Blocks of documents until the compressed file reaches target_bytes."""
    gzip_stream = zlib.compressobj(level, zlib.DEFLATED, 31)   # wbits 31: the gzip format
    with open(path, "wb") as f:
        while f.tell() < target_bytes:
            f.write(gzip_stream.compress(maker.block()))
        f.write(gzip_stream.flush())


def make_input(root: Path, gzip_mb: float, shards: int, seed: int = 0, level: int = 6) -> int:
    folder = root / "multilingual"
    folder.mkdir(parents=True, exist_ok=True)
    maker = TextMaker(np.random.default_rng(seed))
    per_shard = int(gzip_mb * 2 ** 20 / shards)
    for i in range(shards):
        write_shard(folder / f"c4-de.tfrecord-{i:05d}-of-{shards:05d}.json.gz", per_shard, maker, level)
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
    p.add_argument("--level", type=int, default=6, help="gzip level of the input (1 writes it faster)")
    p.add_argument("--keep", type=Path, help="write the input here and keep it (default: a temporary dir)")
    p.add_argument("--input-only", action="store_true", help="write the input (to --keep) and stop")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        if not (root / "multilingual").is_dir():
            t0 = time.perf_counter()
            make_input(root, args.gzip_mb, args.shards, level=args.level)
            print(f"input written in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        if args.input_only:
            return
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
