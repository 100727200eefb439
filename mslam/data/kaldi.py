"""Kaldi data directories: read, write, validate, fix, subset and combine.

A data dir holds one utterance per line in each of its tables, sorted by id (C locale):

    wav.scp           <rec-id> <path> | <command ... |> | <ark:offset>
    segments          <utt-id> <rec-id> <start-s> <end-s>      (optional)
    text              <utt-id> <transcript>
    text.<lang>       <utt-id> <translation into <lang>>       (e.g. text.en for X->En)
    utt2spk           <utt-id> <speaker>
    spk2utt           <speaker> <utt-id> ...                   (derived from utt2spk)
    utt2lang          <utt-id> <language code>
    utt2intent        <utt-id> <intent label>
    utt2num_samples   <utt-id> <samples>
    utt2dur           <utt-id> <seconds>
    feats.scp         <utt-id> <ark:offset>                    (after feature extraction)

Every error names the file and line, and what was expected. Writers go through a temporary
file and a rename, so a killed writer never leaves a half-written table.
"""
from __future__ import annotations

import hashlib
import os
import random
import secrets
import shutil
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, TypeVar

# Tables keyed by utterance id, besides wav.scp (keyed by recording id when segments exists).
UTT_TABLES = ("text", "utt2spk", "utt2lang", "utt2intent", "utt2num_samples", "utt2dur", "feats.scp",
              "utt2num_frames")
NUMERIC_TABLES = {"utt2num_samples": int, "utt2num_frames": int, "utt2dur": float}

T = TypeVar("T")
R = TypeVar("R")


class DataDirError(ValueError):
    """A data dir is malformed; the message names the file, the line and what was expected."""


def kaldi_sort_key(key: str) -> bytes:
    # Kaldi sorts with LC_ALL=C: byte order of the UTF-8 encoding.
    return key.encode("utf-8")


def parse_table_line(path: Path, lineno: int, raw: bytes, allow_empty_value: bool = False) -> tuple[str, str]:
    """(key, value) of one '<key> <value>' line of a table, checked: UTF-8, not empty, a value."""
    try:
        line = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as e:
        raise DataDirError(f"{path}:{lineno}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
                           "re-encode the file as UTF-8") from None
    if not line.strip():
        raise DataDirError(f"{path}:{lineno}: empty line; expected '<id> <value>'")
    key, _, value = line.strip().partition(" ")
    value = value.strip()
    if not value and not allow_empty_value:
        raise DataDirError(f"{path}:{lineno}: id '{key}' has no value; expected '<id> <value>'")
    return key, value


def read_table(path: str | os.PathLike, *, check_sorted: bool = True,
               allow_empty_value: bool = False) -> dict[str, str]:
    """Read '<key> <value>' lines into an insertion-ordered dict.

    Raises DataDirError for non-UTF-8 bytes, a line without a value, a duplicate key or
    (with check_sorted) keys out of C-locale order.
    """
    path = Path(path)
    if not path.is_file():
        raise DataDirError(f"{path}: file not found")
    table: dict[str, str] = {}
    first_line: dict[str, int] = {}
    previous = None
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            key, value = parse_table_line(path, lineno, raw, allow_empty_value)
            if key in table:
                raise DataDirError(f"{path}:{lineno}: duplicate id '{key}' (first on line {first_line[key]})")
            if check_sorted and previous is not None and kaldi_sort_key(key) < kaldi_sort_key(previous):
                raise DataDirError(
                    f"{path}:{lineno}: id '{key}' is out of order after '{previous}'; Kaldi tables are sorted "
                    "in the C locale (fix with: python -m mslam.bin.data_dir fix DIR)")
            table[key] = value
            first_line[key] = lineno
            previous = key
    return table


def write_table(path: str | os.PathLike, table: Mapping[str, object] | Iterable[tuple[str, object]]) -> None:
    """Write '<key> <value>' lines sorted by key, atomically (temp file + rename)."""
    items = table.items() if isinstance(table, Mapping) else table
    rows = sorted(((str(k), str(v)) for k, v in items), key=lambda kv: kaldi_sort_key(kv[0]))
    for key, _ in rows:
        if not key or any(c.isspace() for c in key):
            raise DataDirError(f"{path}: id {key!r} is empty or contains whitespace")
    atomic_write_text(path, "".join(f"{k} {v}\n" for k, v in rows))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write a file through a temporary name in the same folder and a rename: readers (and a run
    killed half-way) see the old file or the new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_temp_file(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _new_temp_file(path: Path) -> tuple[int, str]:
    """A new empty file beside `path`, open for writing. It is created as open() creates files (0o666
    less the umask) rather than 0600 as tempfile.mkstemp does, so that the file renamed into place is
    readable by other users, as a prepared table should be."""
    while True:
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:   # another writer's name: draw again
            continue


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (checkpoints, downloads, fixture manifests)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write_text(path: str | os.PathLike, content: str) -> None:
    atomic_write_bytes(path, content.encode("utf-8"))


@dataclass(frozen=True)
class Segment:
    recording: str
    start: float
    end: float


@dataclass
class Utterance:
    """One utterance of a data dir, with everything the tables say about it."""
    id: str
    wav: str | None = None            # the wav.scp entry of its recording
    segment: Segment | None = None    # None: the whole recording
    text: str | None = None
    speaker: str | None = None
    lang: str | None = None
    intent: str | None = None
    translations: dict[str, str] | None = None
    num_samples: int | None = None
    feats: str | None = None


def check_positive(path: Path, lineno: int, utt: str, value: str, kind: type) -> None:
    """A length table's value (NUMERIC_TABLES) must be a positive number of its kind."""
    try:
        ok = kind(value) > 0
    except ValueError:
        ok = False
    if not ok:
        raise DataDirError(f"{path}:{lineno}: '{utt}' has value '{value}'; expected a positive {kind.__name__}")


class DataDir:
    """A Kaldi data dir: the tables that exist, loaded and checked on construction.

    `DataDir(path)` raises DataDirError for any malformed table; `validate()` then checks that
    the tables agree with each other. Use `fix_data_dir` to repair ordering and mismatches.
    """

    def __init__(self, path: str | os.PathLike, *, check_sorted: bool = True):
        self.path = Path(path)
        if not self.path.is_dir():
            raise DataDirError(f"{self.path}: not a directory")
        self.tables: dict[str, dict[str, str]] = {}
        for name in self.table_names():
            # Transcripts and translations may legitimately be empty (silence); nothing else may.
            allow_empty = name == "text" or name.startswith("text.")
            self.tables[name] = read_table(self.path / name, check_sorted=check_sorted,
                                           allow_empty_value=allow_empty)
        if "wav.scp" not in self.tables and "feats.scp" not in self.tables and "text" not in self.tables:
            raise DataDirError(f"{self.path}: no wav.scp, feats.scp or text; not a data dir")
        self.segments = self._parse_segments() if "segments" in self.tables else None
        for name, kind in NUMERIC_TABLES.items():
            if name in self.tables:
                self._check_numeric(name, kind)

    def table_names(self) -> list[str]:
        names = [n for n in ("wav.scp", "segments", *UTT_TABLES) if (self.path / n).is_file()]
        names += sorted(p.name for p in self.path.glob("text.*") if p.is_file() and not p.name.endswith(".tmp"))
        return names

    def _check_numeric(self, name: str, kind: type) -> None:
        for lineno, (utt, value) in enumerate(self.tables[name].items(), 1):
            check_positive(self.path / name, lineno, utt, value, kind)

    def _parse_segments(self) -> dict[str, Segment]:
        segments = {}
        for lineno, (utt, value) in enumerate(self.tables["segments"].items(), 1):
            fields = value.split()
            where = f"{self.path / 'segments'}:{lineno}"
            if len(fields) != 3:
                raise DataDirError(f"{where}: expected '<utt-id> <rec-id> <start> <end>', got '{utt} {value}'")
            try:
                start, end = float(fields[1]), float(fields[2])
            except ValueError:
                raise DataDirError(f"{where}: start/end of '{utt}' are not numbers: {fields[1:]}") from None
            if not 0 <= start < end:
                raise DataDirError(f"{where}: segment '{utt}' has start {start} and end {end}; expected 0 <= start < end")
            segments[utt] = Segment(fields[0], start, end)
        return segments

    @property
    def utt_ids(self) -> list[str]:
        """Every utterance id any per-utterance table names, in table order."""
        names = [n for n in self.tables if n != "wav.scp"] or ["wav.scp"]
        ids = set().union(*(self.tables[n].keys() for n in names))
        return sorted(ids, key=kaldi_sort_key)

    def __len__(self) -> int:
        return len(self.utt_ids)

    def translation_langs(self) -> list[str]:
        return [n.split(".", 1)[1] for n in self.tables if n.startswith("text.")]

    def utterance(self, utt: str) -> Utterance:
        t = self.tables
        segment = self.segments.get(utt) if self.segments else None
        rec = segment.recording if segment else utt
        translations = {lang: t[f"text.{lang}"][utt] for lang in self.translation_langs() if utt in t[f"text.{lang}"]}
        samples = t.get("utt2num_samples", {}).get(utt)
        return Utterance(
            id=utt, wav=t.get("wav.scp", {}).get(rec), segment=segment, text=t.get("text", {}).get(utt),
            speaker=t.get("utt2spk", {}).get(utt), lang=t.get("utt2lang", {}).get(utt),
            intent=t.get("utt2intent", {}).get(utt), translations=translations or None,
            num_samples=int(samples) if samples is not None else None, feats=t.get("feats.scp", {}).get(utt))

    def __iter__(self):
        return (self.utterance(u) for u in self.utt_ids)

    def problems(self) -> list[str]:
        """Cross-table inconsistencies, one readable line each (empty list: the dir is valid)."""
        found = []
        utts = set(self.utt_ids)
        for name, table in self.tables.items():
            if name in ("wav.scp", "segments"):
                continue
            missing = utts - table.keys()
            if missing:
                found.append(f"{self.path / name}: {len(missing)} utterance(s) that other tables have are "
                             f"missing, e.g. '{min(missing)}'")
        if "wav.scp" in self.tables:
            recs = self.tables["wav.scp"].keys()
            if self.segments is not None:
                orphans = {u for u, s in self.segments.items() if s.recording not in recs}
                if orphans:
                    u = min(orphans)
                    found.append(f"{self.path / 'segments'}: {len(orphans)} segment(s) name a recording missing from "
                                 f"wav.scp, e.g. '{u}' -> '{self.segments[u].recording}'")
            else:
                missing = utts - recs
                if missing:
                    found.append(f"{self.path / 'wav.scp'}: {len(missing)} utterance(s) that other tables have are "
                                 f"missing, e.g. '{min(missing)}'")
        spk2utt = self.path / "spk2utt"
        if "utt2spk" in self.tables and spk2utt.is_file():
            if read_table(spk2utt, check_sorted=False) != utt2spk_to_spk2utt_table(self.tables["utt2spk"]):
                found.append(f"{spk2utt}: does not match utt2spk (regenerate it: python -m mslam.bin.data_dir fix)")
        return found

    def validate(self) -> "DataDir":
        found = self.problems()
        if found:
            raise DataDirError("invalid data dir " + str(self.path) + ":\n  " + "\n  ".join(found))
        return self


def utt2spk_to_spk2utt_table(utt2spk: Mapping[str, str]) -> dict[str, str]:
    spk2utt: dict[str, list[str]] = {}
    for utt, spk in utt2spk.items():
        spk2utt.setdefault(spk, []).append(utt)
    return {spk: " ".join(sorted(utts, key=kaldi_sort_key)) for spk, utts in
            sorted(spk2utt.items(), key=lambda kv: kaldi_sort_key(kv[0]))}


def write_data_dir(path: str | os.PathLike, utterances: Iterable[Utterance]) -> None:
    """Write utterances as a data dir (sorted, spk2utt derived). Only non-empty fields get a table."""
    utterances = list(utterances)
    counts = Counter(u.id for u in utterances)
    dups = [u for u, n in counts.items() if n > 1]
    if dups:
        raise DataDirError(f"{path}: duplicate utterance id(s), e.g. '{dups[0]}'")
    tables: dict[str, dict[str, str]] = {}

    def put(name: str, key: str, value) -> None:
        if value is not None:
            tables.setdefault(name, {})[key] = str(value)

    for u in utterances:
        if u.segment is not None:
            put("segments", u.id, f"{u.segment.recording} {u.segment.start:.3f} {u.segment.end:.3f}")
            put("wav.scp", u.segment.recording, u.wav)
        else:
            put("wav.scp", u.id, u.wav)
        put("text", u.id, u.text)
        put("utt2spk", u.id, u.speaker)
        put("utt2lang", u.id, u.lang)
        put("utt2intent", u.id, u.intent)
        put("utt2num_samples", u.id, u.num_samples)
        put("feats.scp", u.id, u.feats)
        for lang, text in (u.translations or {}).items():
            put(f"text.{lang}", u.id, text)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        write_table(path / name, table)
    if "utt2spk" in tables:
        write_table(path / "spk2utt", utt2spk_to_spk2utt_table(tables["utt2spk"]))


def fix_data_dir(path: str | os.PathLike) -> dict[str, int]:
    """Sort every table, keep only utterances present in all of them, regenerate spk2utt.

    Returns {"kept": n, "dropped": m}. Duplicate ids and malformed lines are not guessed
    at: they still raise, because which line is right cannot be known.
    """
    d = DataDir(path, check_sorted=False)
    utts = set(d.utt_ids)
    for name, table in d.tables.items():
        if name not in ("wav.scp", "spk2utt"):
            utts &= table.keys()
    if d.segments is not None and "wav.scp" in d.tables:
        utts = {u for u in utts if d.segments[u].recording in d.tables["wav.scp"]}
    elif "wav.scp" in d.tables:
        utts &= d.tables["wav.scp"].keys()
    before = len(d.utt_ids)
    _write_selection(d, d.path, utts)
    return {"kept": len(utts), "dropped": before - len(utts)}


def _write_selection(d: DataDir, out: Path, utts: set[str]) -> None:
    """Write the tables of `d` restricted to `utts` (and the recordings they use) into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    recs = {d.segments[u].recording for u in utts} if d.segments is not None else utts
    for name, table in d.tables.items():
        keep = recs if name == "wav.scp" else utts
        write_table(out / name, {k: v for k, v in table.items() if k in keep})
    if "utt2spk" in d.tables:
        write_table(out / "spk2utt", utt2spk_to_spk2utt_table({u: s for u, s in d.tables["utt2spk"].items() if u in utts}))


def subset_data_dir(src: str | os.PathLike, dst: str | os.PathLike, *, first: int | None = None,
                    random_n: int | None = None, utt_list: Iterable[str] | None = None,
                    per_lang: int | None = None, langs: Iterable[str] | None = None, seed: int = 0) -> int:
    """Copy a subset of a data dir: the first N, N at random, a list of ids, or N per language drawn
    at random (seeded) and spread evenly over each language's speakers (optionally only some
    languages). Returns the number of utterances written."""
    d = DataDir(src).validate()
    ids = d.utt_ids
    if langs is not None or per_lang is not None:
        if "utt2lang" not in d.tables:
            raise DataDirError(f"{d.path}: per-language subset needs utt2lang")
        wanted = set(langs) if langs is not None else None
        by_lang: dict[str, list[str]] = {}
        for u in ids:
            lang = d.tables["utt2lang"][u]
            if wanted is None or lang in wanted:
                by_lang.setdefault(lang, []).append(u)
        utt2spk = d.tables.get("utt2spk", {})
        ids = [u for lang in sorted(by_lang)
               for u in speaker_stratified_sample(by_lang[lang], utt2spk, per_lang, random.Random(f"{seed}-{lang}"))]
    if utt_list is not None:
        wanted_ids = set(utt_list)
        unknown = wanted_ids - set(d.utt_ids)
        if unknown:
            raise DataDirError(f"{d.path}: {len(unknown)} requested id(s) not in the data dir, e.g. '{min(unknown)}'")
        ids = [u for u in ids if u in wanted_ids]
    if first is not None:
        ids = ids[:first]
    if random_n is not None:
        ids = random.Random(seed).sample(ids, min(random_n, len(ids)))
    _write_selection(d, Path(dst), set(ids))
    return len(ids)


def speaker_stratified_sample(utts: list[str], utt2spk: Mapping[str, str], n: int | None,
                              rng: random.Random) -> list[str]:
    """n utterances drawn at random, taking one from each speaker in turn (speakers in random
    order), so that every speaker contributes within one utterance of the others; all when n is None.
    Ids are sorted by speaker in Kaldi dirs, so a "first n" cut would hold one or two speakers."""
    by_speaker: dict[str, list[str]] = {}
    for u in utts:
        by_speaker.setdefault(utt2spk.get(u, u), []).append(u)
    queues = [rng.sample(v, len(v)) for _, v in sorted(by_speaker.items())]
    rng.shuffle(queues)
    chosen: list[str] = []
    while queues and (n is None or len(chosen) < n):
        for q in queues:
            if n is not None and len(chosen) == n:
                break
            chosen.append(q.pop())
        queues = [q for q in queues if q]
    return chosen


def combine_data_dirs(dst: str | os.PathLike, srcs: Iterable[str | os.PathLike]) -> int:
    """Concatenate data dirs into one. Ids must be unique across the inputs; tables that exist in
    only some inputs are an error (it would silently drop utterances)."""
    dirs = [DataDir(s).validate() for s in srcs]
    if not dirs:
        raise DataDirError("combine: no source data dirs given")
    names = set(dirs[0].tables)
    for d in dirs[1:]:
        if set(d.tables) != names:
            raise DataDirError(f"combine: {d.path} has tables {sorted(set(d.tables))}, but {dirs[0].path} has "
                               f"{sorted(names)}; subset or fix them first")
    merged: dict[str, dict[str, str]] = {n: {} for n in names}
    for d in dirs:
        for name, table in d.tables.items():
            clash = merged[name].keys() & table.keys()
            if clash and name != "wav.scp":
                raise DataDirError(f"combine: id '{min(clash)}' of {d.path / name} is also in an earlier input")
            merged[name].update(table)
    out = Path(dst)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name, table in merged.items():
        write_table(out / name, table)
    if "utt2spk" in merged:
        write_table(out / "spk2utt", utt2spk_to_spk2utt_table(merged["utt2spk"]))
    return len(DataDir(out).utt_ids)


def filter_utterances(src: str | os.PathLike, dst: str | os.PathLike, keep: Callable[[Utterance], bool]) -> int:
    d = DataDir(src).validate()
    ids = {u.id for u in d if keep(u)}
    _write_selection(d, Path(dst), ids)
    return len(ids)


LENGTH_TABLES = ("utt2num_frames", "segments", "utt2dur", "utt2num_samples")


def add_durations(path: str | os.PathLike, *, quick: bool = False, nj: int = 1) -> int:
    """Write utt2dur (seconds) for a data dir that has no length table (LENGTH_TABLES). Returns the number of
    utterances written (0: it had lengths).

    Every utterance's audio is decoded (nj at a time), so the duration is what training will read, and
    audio it could not use is found now: empty, cut short (fewer samples than the header promises, a WAV
    data chunk past the end of the file, a broken FLAC/Ogg stream) or holding NaN/inf samples. Each such
    utterance is named with its file (the first SHOWN_PROBLEMS, then a count), and no utt2dur is written.
    `quick` reads only the headers of plain files: empty and cut-short WAV files are still found, broken
    streams and bad samples are not.

    The dir is read as a stream (checked as validate() checks it) and utt2dur written line by line, so
    memory does not grow with the utterances."""
    from mslam.data.corpora.common import iter_data_dir   # (common imports this module)
    path = Path(path)
    if any((path / name).is_file() for name in LENGTH_TABLES):
        return 0
    measure = _header_duration if quick else _decoded_duration
    utterances = (Utterance(id=utt, wav=row["wav.scp"][1] if "wav.scp" in row else None)
                  for utt, row in iter_data_dir(path))
    problems, count = FirstProblems(SHOWN_PROBLEMS), 0
    with StreamedTable(path / "utt2dur") as utt2dur:
        for utt, result in map_in_order(lambda u: _duration_or_problem(measure, u), utterances, nj):
            count += 1
            if isinstance(result, str):
                problems.add(result)
            elif not problems.count:   # once one is found no utt2dur is written: no need to go on writing
                utt2dur.write(utt.id, f"{result:.4f}")
        if problems.count:
            raise DataDirError(f"{path}: {problems.count} of {count} utterance(s) have unusable audio, so no "
                               f"utt2dur was written; replace those files, or keep only the other utterances "
                               f"(python -m mslam.bin.data_dir subset DIR NEW_DIR --utt-list IDS):\n  "
                               + "\n  ".join(problems.lines()))
    return count


SHOWN_PROBLEMS = 20


class FirstProblems:
    """The first `shown` problems and a count of all: a report that does not grow with the data."""

    def __init__(self, shown: int):
        self.shown, self.first, self.count = shown, [], 0

    def add(self, problem: str) -> None:
        self.count += 1
        if len(self.first) < self.shown:
            self.first.append(problem)

    def lines(self) -> list[str]:
        return self.first + ([f"... and {self.count - self.shown} more"] if self.count > self.shown else [])


def map_in_order(fn: Callable[[T], R], items: Iterable[T], nj: int) -> Iterator[tuple[T, R]]:
    """(item, fn(item)) in the items' order, fn run on nj threads. At most IN_FLIGHT_PER_THREAD * nj items
    are taken ahead of the one yielded, so memory does not grow with the items (pool.map takes them all)."""
    nj = max(1, nj)
    in_flight: deque = deque()
    with ThreadPoolExecutor(max_workers=nj) as pool:
        try:
            for item in items:
                in_flight.append((item, pool.submit(fn, item)))
                if len(in_flight) >= IN_FLIGHT_PER_THREAD * nj:
                    done, future = in_flight.popleft()
                    yield done, future.result()
            while in_flight:
                done, future = in_flight.popleft()
                yield done, future.result()
        finally:   # stopped early (an error, or the caller's): the work not started is not done
            for _, future in in_flight:
                future.cancel()


IN_FLIGHT_PER_THREAD = 4


class StreamedTable:
    """A table written line by line, rows in sorted order, through a temporary file renamed into place when
    the `with` block ends without an exception (no table at all otherwise): the bytes write_table writes."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.previous: str | None = None

    def __enter__(self) -> "StreamedTable":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = _new_temp_file(self.path)
        self.file = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        return self

    def write(self, key: str, value: object) -> None:
        if key.split() != [key]:   # empty or holding whitespace (split() knows what isspace() knows)
            raise DataDirError(f"{self.path}: id {key!r} is empty or contains whitespace")
        if self.previous is not None and kaldi_sort_key(key) <= kaldi_sort_key(self.previous):
            raise ValueError(f"{self.path}: rows must come sorted and once each: '{key}' after '{self.previous}'")
        self.file.write(f"{key} {value}\n")
        self.previous = key

    def __exit__(self, kind, error, trace) -> None:
        try:
            with self.file:
                if kind is None:
                    self.file.flush()
                    os.fsync(self.file.fileno())
            if kind is None:
                os.replace(self.tmp, self.path)
        finally:
            if os.path.exists(self.tmp):
                os.unlink(self.tmp)


def _duration_or_problem(measure: Callable[[Utterance], float], utt: Utterance) -> float | str:
    """The utterance's duration, or a line saying what is wrong with its audio (utterance and file)."""
    from mslam.data.audio import AudioError
    if not (utt.wav or "").strip():
        return f"utterance '{utt.id}': no wav.scp entry"
    try:
        return measure(utt)
    except (AudioError, DataDirError) as e:
        return str(e)


def _header_duration(utt: Utterance) -> float:
    import soundfile

    from mslam.data.audio import AudioError, wav_bytes_missing
    entry = utt.wav.strip()
    if not os.path.isfile(entry):   # a pipe or an ark: there is no header to read
        return _decoded_duration(utt)
    try:
        info = soundfile.info(entry)
    except (soundfile.LibsndfileError, RuntimeError) as e:
        raise AudioError(f"utterance '{utt.id}': {entry} has no readable audio header ({e})") from None
    if info.frames <= 0:
        raise AudioError(f"utterance '{utt.id}': '{entry}' holds no samples (empty audio)")
    missing = wav_bytes_missing(entry)
    if missing:
        raise AudioError(f"utterance '{utt.id}': '{entry}' is cut short: its WAV header promises {missing} "
                         "more bytes of samples than the file holds")
    return info.frames / info.samplerate


def _decoded_duration(utt: Utterance) -> float:
    import soundfile

    from mslam.data.audio import AudioError, read_audio
    entry = utt.wav.strip()
    samples, rate = read_audio(entry, utt.id)   # raises for empty, unreadable and non-finite audio
    if os.path.isfile(entry):
        info = soundfile.info(entry)
        # An MP3's length in its header may be an estimate from the file size: not a promise to hold it to.
        if info.format not in ("MP3", "MPEG") and len(samples) < info.frames:
            raise AudioError(f"utterance '{utt.id}': '{entry}' is cut short: its header promises {info.frames} "
                             f"samples, {len(samples)} could be decoded")
    return len(samples) / rate
