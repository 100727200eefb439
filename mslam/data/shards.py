"""Shard sets: manifests at the paper's scale (about 150 M utterances), written once, read lazily.

Kaldi data dirs and `<lang>.txt` text shards stay the user-facing format; `python -m
mslam.bin.make_shards` converts them into a shard set, a directory of

    index.json                    kind, unit, and per language: utterances, frames/characters, and its
                                  length buckets, each a list of shards with their counts
    <lang>/b<bucket>-<n>.jsonl    one record (mslam.data.manifest.Record) per line, UTF-8, uncompressed
    <lang>/b<bucket>-<n>.idx      per line 16 bytes, little-endian: byte offset (u8), byte count (u4),
                                  length in frames or characters (u4)

A shard holds at most `shard_size` utterances of one language and one length bucket (quantiles of the
language's lengths). Nothing is read whole: the sampler reads 16 index bytes per utterance it draws
and the record of an utterance only when the process that trains on it collates it (os.pread, so
forked DataLoader workers can share the open files). What a process holds grows with the number of
shards, not of utterances.

ShardSampler draws a step's global batch like SourceSampler (a pure function of seed, source and
step; the same frame/character/sequence budgets and min_items), but each utterance draws its own
language with p_l ~ (n_l / N)^(1/T): languages mix within a batch, as in the paper. This module
imports no torch: it is what a 150 M-utterance sampler costs in memory.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import struct
from array import array
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from mslam.data.kaldi import DataDirError, atomic_write_text
from mslam.data.manifest import Record
from mslam.data.tokenizer import temperature_weights

log = logging.getLogger("mslam.data")

FORMAT, VERSION = "mslam-shards", 1
KINDS = {"speech": "frames", "paired": "frames", "text": "chars"}
ROW = struct.Struct("<QII")          # offset, byte count, length
MIN_BUCKET = 16                      # utterances per length bucket at least


class ShardError(DataDirError):
    """A shard set that cannot be read as one: the message names the file, the line and what was expected."""


# ----------------------------------------------------------------------------- writing
class _OpenFiles:
    """A bounded set of open files (least recently used closed first): a language x bucket grid
    of shards must not exhaust the process's file descriptors."""

    def __init__(self, mode: str, limit: int = 128):
        self.mode, self.limit, self.files = mode, limit, OrderedDict()

    def get(self, path: Path):
        f = self.files.pop(path, None)
        if f is None:
            if len(self.files) >= self.limit:
                self.files.popitem(last=False)[1].close()
            f = open(path, self.mode)
        self.files[path] = f
        return f

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files.clear()


@dataclass
class _Cell:
    """The shard being filled for one language and bucket."""
    lang: str
    bucket: int
    number: int = 0
    count: int = 0
    offset: int = 0
    units: int = 0
    shortest: int = 2 ** 32
    longest: int = 0

    def name(self) -> str:
        return f"{self.lang}/b{self.bucket:02d}-{self.number:05d}"


def _bucket_edges(lengths: np.ndarray, buckets: int) -> np.ndarray:
    """Inner edges of up to `buckets` quantile buckets of at least MIN_BUCKET utterances. Every
    language gets the same number where it can: a step draws one bucket index for all languages,
    and a language with coarser buckets brings longer utterances to a short bucket, hits the budget
    more often and so is drawn a little less than its share (60 utterances in 1 bucket against 4:
    10.1% for 11.1%). Smaller buckets would repeat utterances within a batch instead."""
    n = max(1, min(buckets, len(lengths) // MIN_BUCKET))
    return np.unique(np.quantile(lengths, np.linspace(0, 1, n + 1)[1:-1], method="lower")).astype(np.int64)


def write_shards(out: str | os.PathLike, kind: str, records: Callable[[], Iterable[Record]], *,
                 shard_size: int = 10000, buckets: int = 10, inputs: dict | None = None) -> dict:
    """Write the shard set of `records` (a function giving a fresh iterable: it is read twice, once
    for each language's length quantiles and once to write) into `out`, atomically: the set is built
    beside it and renamed into place, so `out/index.json` exists only for a finished set.
    Memory: 4 bytes per utterance (the lengths of pass one) and a bounded number of open files."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if shard_size < 1 or buckets < 1:
        raise ValueError(f"need shard_size >= 1 and buckets >= 1, got {shard_size}, {buckets}")
    out = Path(out)
    lengths: dict[str, array] = {}
    for r in records():
        lengths.setdefault(r.lang, array("I")).append(r.length)
    if not lengths:
        raise DataDirError(f"{out}: no utterances to write (inputs: {inputs})")
    edges = {lang: _bucket_edges(np.frombuffer(a, dtype=np.uint32), buckets) for lang, a in lengths.items()}
    del lengths
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    cells: dict[tuple[str, int], _Cell] = {}
    done: dict[tuple[str, int], list[dict]] = {}
    data, rows = _OpenFiles("ab"), _OpenFiles("ab")

    def finish(cell: _Cell) -> None:
        done.setdefault((cell.lang, cell.bucket), []).append(
            {"file": cell.name(), "utterances": cell.count, "units": cell.units, "min": cell.shortest,
             "max": cell.longest})

    try:
        for r in records():
            b = int(np.searchsorted(edges[r.lang], r.length, side="right"))
            cell = cells.setdefault((r.lang, b), _Cell(r.lang, b))
            if cell.count == shard_size:
                finish(cell)
                cell.number, cell.count, cell.offset, cell.units = cell.number + 1, 0, 0, 0
                cell.shortest, cell.longest = 2 ** 32, 0
            if cell.count == 0:
                (tmp / r.lang).mkdir(parents=True, exist_ok=True)
            line = (json.dumps({k: v for k, v in asdict(r).items() if v is not None}, ensure_ascii=False)
                    + "\n").encode("utf-8")
            data.get(tmp / f"{cell.name()}.jsonl").write(line)
            rows.get(tmp / f"{cell.name()}.idx").write(ROW.pack(cell.offset, len(line), r.length))
            cell.count, cell.offset, cell.units = cell.count + 1, cell.offset + len(line), cell.units + r.length
            cell.shortest, cell.longest = min(cell.shortest, r.length), max(cell.longest, r.length)
    finally:
        data.close()
        rows.close()
    for cell in cells.values():
        finish(cell)
    index = {"format": FORMAT, "version": VERSION, "kind": kind, "unit": KINDS[kind], "shard_size": shard_size,
             "inputs": inputs or {}, "langs": {}}
    for lang in sorted({lang for lang, _ in done}):
        bucket_list = []
        for b in sorted(b for l2, b in done if l2 == lang):
            shards = done[(lang, b)]
            bucket_list.append({"utterances": sum(s["utterances"] for s in shards),
                                "units": sum(s["units"] for s in shards), "min": min(s["min"] for s in shards),
                                "max": max(s["max"] for s in shards), "shards": shards})
        index["langs"][lang] = {"utterances": sum(b["utterances"] for b in bucket_list),
                                "units": sum(b["units"] for b in bucket_list), "buckets": bucket_list}
    atomic_write_text(tmp / "index.json", json.dumps(index, indent=1, ensure_ascii=False) + "\n")
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return index


def finished_index(out: str | os.PathLike, inputs: dict) -> dict | None:
    """The index of a finished shard set written from the same inputs, else None (write it again)."""
    path = Path(out) / "index.json"
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return index if index.get("inputs") == inputs else None


# ----------------------------------------------------------------------------- reading
@dataclass
class _Shard:
    path: Path                 # without suffix
    lang: str
    count: int
    base: int                  # global id of its first utterance


def _require(cond: bool, where: Path, what: str) -> None:
    if not cond:
        raise ShardError(f"{where}: {what}")


def _load_index(shard_dir: Path, kind: str) -> dict:
    path = shard_dir / "index.json"
    if not path.is_file():
        raise ShardError(f"{path}: not found; a shard set is written by python -m mslam.bin.make_shards "
                         f"(a directory of Kaldi data dirs or text shards is data.<source>.format: dirs)")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ShardError(f"{path}: not JSON ({e})") from None
    _require(isinstance(index, dict) and index.get("format") == FORMAT, path,
             f"expected an object with \"format\": \"{FORMAT}\"")
    _require(index.get("version") == VERSION, path, f"expected version {VERSION}, got {index.get('version')!r}")
    # A paired set serves as speech too (its transcripts unused); not the other way round.
    _require(index.get("kind") == kind or (kind, index.get("kind")) == ("speech", "paired"), path,
             f"expected a shard set of kind '{kind}', got {index.get('kind')!r}")
    _require(isinstance(index.get("langs"), dict) and index["langs"], path, "expected \"langs\": {lang: {...}}")
    for lang, entry in index["langs"].items():
        where = f"langs.{lang}"
        _require(isinstance(entry, dict) and isinstance(entry.get("buckets"), list) and entry["buckets"], path,
                 f"{where}: expected \"buckets\": a non-empty list")
        for i, bucket in enumerate(entry["buckets"]):
            shards = bucket.get("shards") if isinstance(bucket, dict) else None
            _require(isinstance(shards, list) and shards and isinstance(bucket.get("min"), int) and
                     isinstance(bucket.get("max"), int), path,
                     f"{where}.buckets[{i}]: expected \"min\", \"max\" (lengths) and \"shards\": a list")
            for j, s in enumerate(shards):
                ok = isinstance(s, dict) and isinstance(s.get("file"), str) and \
                    isinstance(s.get("utterances"), int) and s["utterances"] > 0 and isinstance(s.get("units"), int)
                _require(ok, path, f"{where}.buckets[{i}].shards[{j}]: expected {{\"file\": str, \"utterances\": "
                                   f"int > 0, \"units\": int}}, got {s!r}")
    return index


class ShardSource:
    """The shard sets of one source (one or more directories), read lazily. Utterances have global
    ids 0..len-1 (shard after shard, in index order); `length(i)` and `record(i)` read one each."""

    def __init__(self, dirs: Iterable[str | os.PathLike], kind: str, max_open: int = 384):
        self.kind, self.shards = kind, []
        self.langs: dict[str, dict] = {}          # lang -> {"units", "utterances", "buckets": [[shard no]]}
        for d in dirs:
            d = Path(d)
            index = _load_index(d, kind)
            for lang, entry in sorted(index["langs"].items()):
                agg = self.langs.setdefault(lang, {"units": 0, "utterances": 0, "buckets": []})
                agg["units"] += sum(s["units"] for b in entry["buckets"] for s in b["shards"])
                buckets = []
                for bucket in entry["buckets"]:
                    nos: list = []
                    for s in bucket["shards"]:
                        base = self.shards[-1].base + self.shards[-1].count if self.shards else 0
                        nos.append(len(self.shards))
                        self.shards.append(_Shard(d / s["file"], lang, s["utterances"], base))
                        agg["utterances"] += s["utterances"]
                    buckets.append((nos, bucket["min"], bucket["max"]))
                agg["buckets"].append(buckets)   # per directory: its buckets of this language
        self.bases = np.array([s.base for s in self.shards], dtype=np.int64)
        self.total = self.shards[-1].base + self.shards[-1].count if self.shards else 0
        self._idx, self._data = _Descriptors(max_open), _Descriptors(max_open)
        self._checked: set[int] = set()

    def __len__(self) -> int:
        return self.total

    def locate(self, i: int) -> tuple[int, int]:
        s = int(np.searchsorted(self.bases, i, side="right")) - 1
        if not 0 <= i < self.total:
            raise IndexError(f"utterance {i} of {self.total}")
        return s, i - self.shards[s].base

    def _row(self, s: int, row: int) -> tuple[int, int, int]:
        shard = self.shards[s]
        path = shard.path.with_suffix(".idx")
        fd = self._idx.get(path)
        if s not in self._checked:   # once per shard: its index has the rows index.json promises
            size = os.fstat(fd).st_size
            _require(size == shard.count * ROW.size, path, f"expected {shard.count} rows of {ROW.size} bytes "
                     f"({shard.count * ROW.size} bytes, as index.json says), found {size} bytes")
            self._checked.add(s)
        return ROW.unpack(os.pread(fd, ROW.size, row * ROW.size))

    def length(self, i: int) -> int:
        return self._row(*self.locate(i))[2]

    def record(self, i: int) -> Record:
        s, row = self.locate(i)
        offset, nbytes, length = self._row(s, row)
        path = self.shards[s].path.with_suffix(".jsonl")
        raw = os.pread(self._data.get(path), nbytes, offset)
        where = f"{path}:{row + 1}"
        try:
            fields = json.loads(raw)
            r = Record(**{**fields, "segment": tuple(fields["segment"]) if fields.get("segment") else None})
        except (ValueError, TypeError, KeyError) as e:
            raise ShardError(f"{where}: expected a JSON record with id, lang, length (and text, wav, segment, "
                             f"feats), got {raw[:80]!r} ({e})") from None
        _require(r.length == length and r.lang == self.shards[s].lang, Path(where),
                 f"record says lang {r.lang}, length {r.length}; the index says {self.shards[s].lang}, {length}")
        return r

    def __getitem__(self, i: int) -> Record:
        return self.record(i)

    def __iter__(self) -> Iterator[Record]:
        return (self.record(i) for i in range(self.total))

    def __getstate__(self):   # DataLoader workers spawned (not forked) open their own files
        state = dict(self.__dict__)
        state["_idx"], state["_data"] = _Descriptors(self._idx.limit), _Descriptors(self._data.limit)
        return state


class _Descriptors:
    """Open read-only file descriptors, at most `limit` (least recently used closed first)."""

    def __init__(self, limit: int):
        self.limit, self.fds = limit, OrderedDict()

    def get(self, path: Path) -> int:
        fd = self.fds.pop(path, None)
        if fd is None:
            if len(self.fds) >= self.limit:
                os.close(self.fds.popitem(last=False)[1])
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                raise ShardError(f"{path}: not found (listed in {path.parent.parent / 'index.json'})") from None
        self.fds[path] = fd
        return fd

    def __del__(self):
        for fd in self.fds.values():
            try:
                os.close(fd)
            except OSError:
                pass


# ----------------------------------------------------------------------------- sampling
@dataclass
class _Cell2:
    shards: np.ndarray         # shard numbers
    cum: np.ndarray            # cumulative utterance counts (ends)


class ShardSampler:
    """Draws the global utterance ids of one source's batch for a step (a pure function of seed,
    source and step). A step draws one length bucket b (0..B-1); each utterance then draws its
    language by temperature (p_l ~ (n_l/N)^(1/T), n_l = frames or characters), one of that
    language's utterances of bucket b * B_l // B, uniformly, and is kept while the budget holds
    (sequences and padded frames/characters, at least `min_items`: as SourceSampler). Utterances
    outside [min_frames, max_frames] are drawn again; one already in the batch too (see _pick)."""

    RETRIES = 1000

    def __init__(self, name: str, source: ShardSource, cfg, seed: int, min_items: int, source_id: int):
        self.name, self.source, self.cfg, self.seed, self.min_items = name, source, cfg, seed, min_items
        self.source_id = source_id
        self.lo = getattr(cfg, "min_frames", 0)
        self.hi = getattr(cfg, "max_frames", 0) or 2 ** 32
        self.cap = cfg.max_units() if name == "text" else 0
        cells = {lang: self._cells(lang) for lang in sorted(source.langs)}
        outside = sorted(lang for lang, c in cells.items() if not c)
        if outside:
            log.warning("data.%s: language(s) %s left out: no utterance between min_frames %d and max_frames %d",
                        name, ", ".join(outside), self.lo, self.hi)
        if len(outside) == len(cells):
            raise ShardError(f"data.{name}: no utterance between min_frames {self.lo} and max_frames {self.hi}")
        weights = temperature_weights({lang: source.langs[lang]["units"] for lang in cells if cells[lang]},
                                      cfg.temperature)
        self.langs = sorted(weights)
        self.probs = np.array([weights[lang] for lang in self.langs])
        self.cum_probs = np.cumsum(self.probs)
        self.cells: list[list[_Cell2]] = [cells[lang] for lang in self.langs]
        self.num_buckets = max(len(c) for c in self.cells)
        self.lengths = _Lengths(self)

    def _cells(self, lang: str) -> list[_Cell2]:
        """Bucket k of a language is the union of bucket k * B_d // B of each directory d, leaving out
        the buckets whose lengths all lie outside [min_frames, max_frames]."""
        per_dir = [[nos for nos, lo, hi in buckets if hi >= self.lo and lo <= self.hi]
                   for buckets in self.source.langs[lang]["buckets"]]
        per_dir = [buckets for buckets in per_dir if buckets]
        if not per_dir:
            return []
        n = max(len(b) for b in per_dir)
        cells = []
        for k in range(n):
            nos = [no for buckets in per_dir for no in buckets[k * len(buckets) // n]]
            counts = np.array([self.source.shards[no].count for no in nos], dtype=np.int64)
            cells.append(_Cell2(np.array(nos, dtype=np.int64), np.cumsum(counts)))
        return cells

    def length(self, i: int) -> int:
        n = self.source.length(i)
        return min(n, self.cap) if self.cap else n

    def _pick(self, rng: np.random.Generator, bucket: int, seen: set[int]) -> tuple[int, int]:
        """One utterance: its language by temperature, then one of the language's bucket, uniformly.
        One already in the batch is drawn again (from the same language, then from a new language:
        a language smaller than the batch is repeated only when it has nothing new left)."""
        for redraw in range(8):
            u = rng.random() * self.cum_probs[-1]
            lang = min(int(np.searchsorted(self.cum_probs, u, side="right")), len(self.langs) - 1)
            cells = self.cells[lang]
            cell = cells[bucket * len(cells) // self.num_buckets]
            for attempt in range(self.RETRIES):
                k = int(rng.integers(cell.cum[-1]))
                j = int(np.searchsorted(cell.cum, k, side="right"))
                i = self.source.shards[int(cell.shards[j])].base + k - (int(cell.cum[j - 1]) if j else 0)
                n = self.length(i)
                if not self.lo <= n <= self.hi:
                    continue
                if i not in seen or redraw == 7:
                    return i, n
                if attempt >= 4 * min(int(cell.cum[-1]), 8):
                    break
            else:
                raise ShardError(f"data.{self.name}: {self.RETRIES} draws from language {self.langs[lang]} found "
                                 f"no utterance between min_frames {self.lo} and max_frames {self.hi}")
        raise AssertionError("unreachable: the last redraw accepts a repeat")

    def draw(self, step: int) -> list[int]:
        rng = np.random.default_rng([self.seed, self.source_id, step])
        bucket = int(rng.integers(self.num_buckets))
        max_seqs, max_units = self.cfg.batch_sequences, self.cfg.budget_units()
        chosen: list[int] = []
        seen: set[int] = set()
        longest = 0
        while True:
            i, n = self._pick(rng, bucket, seen)
            count, longest_next = len(chosen) + 1, max(longest, n)
            fits = (not max_seqs or count <= max_seqs) and (not max_units or count * longest_next <= max_units)
            if len(chosen) >= self.min_items and not fits:
                return chosen
            chosen.append(i)
            seen.add(i)
            longest = longest_next

    def language_share(self) -> dict[str, float]:
        return dict(zip(self.langs, self.probs.tolist()))

    def language_of(self, i: int) -> str:
        return self.source.shards[self.source.locate(i)[0]].lang


class _Lengths:
    """`sampler.lengths[i]` as SourceSampler has it, read from the index (text capped at max_chars)."""

    def __init__(self, sampler: ShardSampler):
        self.sampler = sampler

    def __getitem__(self, i) -> int:
        return self.sampler.length(int(i))

    def __len__(self) -> int:
        return len(self.sampler.source)
