"""What the corpus preparers share: reading and checking `--langs`, extracting an archive once, putting a
finished data dir in place whole, writing data dirs of any size in shards and bounded memory, running
jobs a few at a time (and shards resumably, or one part of them per job of a job array), and how their
commands report errors.

Each corpus module keeps its own layout, messages and hints; only the mechanics live here.
"""
from __future__ import annotations

import argparse
import filecmp
import hashlib
import heapq
import json
import logging
import os
import re
import shutil
import sys
import tarfile
import zipfile
import zlib
from concurrent.futures import CancelledError, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, Iterable, Iterator, Mapping, Sequence, TypeVar

from tqdm import tqdm

from mslam.data.kaldi import (NUMERIC_TABLES, UTT_TABLES, DataDir, DataDirError, Utterance, atomic_write_text,
                              check_positive, kaldi_sort_key, parse_table_line, read_table, write_data_dir, write_table)

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("mslam.data.corpora")


# ---- what to tell the user -----------------------------------------------------------------

# The stage that fetches what is missing and, since it checks the files already there, what is damaged.
DOWNLOAD_STAGE = "the recipe's download stage (./run.sh --stage 1 --stop-stage 1, with the same --langs)"


# ---- language codes ------------------------------------------------------------------------

def split_list(spec: str) -> list[str]:
    """`a,b` (the command line) or `a b` (a recipe's shell list) -> ['a', 'b']."""
    return spec.replace(",", " ").split()


def check_codes(codes: Iterable[str], valid: Collection[str], what: str, valid_ones: str) -> list[str]:
    """The codes in the order given, repeats dropped. An unknown one is an error:
    `unknown <what> <codes>; <valid_ones>`, so the user sees what to write instead."""
    codes = list(dict.fromkeys(codes))
    unknown = [code for code in codes if code not in valid]
    if unknown:
        raise DataDirError(f"unknown {what} {', '.join(unknown)}; {valid_ones}")
    return codes


def parse_langs(spec: str | None, known: Collection[str], corpus: str) -> list[str]:
    """A `--langs` value checked against a corpus's codes; None, '' or 'all' -> every known code."""
    if spec is None or spec.strip() in ("", "all"):
        return list(known)
    return check_codes(split_list(spec), known, f"{corpus} language(s)", f"valid codes: {' '.join(known)}")


# ---- archives ------------------------------------------------------------------------------

# What reading a damaged or cut-short tar, gzip or zip raises (OSError also covers a full disk).
ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, zlib.error)


@contextmanager
def archive_errors(archive: Path, hint: str) -> Iterator[None]:
    """Turn a read error of `archive` into a DataDirError naming it, followed by `hint` (what to do)."""
    try:
        yield
    except ARCHIVE_ERRORS as e:
        raise DataDirError(f"{archive}: cannot extract ({e}); {hint}") from None


@contextmanager
def extraction_folder(archive: Path, tmp: Path, hint: str) -> Iterator[Path]:
    """An empty folder `tmp` to extract `archive` into, for the caller to move into place once complete.

    A folder left there by a killed run is removed first, so a killed extraction is redone whole;
    a failed one removes `tmp` and raises as archive_errors does.
    """
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with archive_errors(archive, hint):
            yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ---- data dirs -----------------------------------------------------------------------------

def build_data_dir(dst: Path, utts: list[Utterance], extra_tables: Mapping[str, Mapping[str, str]] | None = None
                   ) -> Path:
    """Write and validate the data dir meant for `dst` in `<dst>.tmp` (replacing one a killed run left);
    returns that folder, for replace_dir or install_dir to put in place."""
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write_data_dir(tmp, utts)
    for name, table in (extra_tables or {}).items():
        write_table(tmp / name, table)
    DataDir(tmp).validate()
    return tmp


def replace_dir(tmp: Path, dst: Path) -> None:
    """Move a finished folder to `dst`. The old one is renamed away first and removed after, so `dst`
    is always a whole folder, old or new."""
    old = dst.with_name(dst.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dst.exists():
        os.replace(dst, old)
    os.replace(tmp, dst)
    shutil.rmtree(old, ignore_errors=True)


def same_files(a: Path, b: Path) -> bool:
    """Whether two folders hold the same file names with the same bytes."""
    if not a.is_dir() or not b.is_dir():
        return False
    names = sorted(p.name for p in a.iterdir())
    if names != sorted(p.name for p in b.iterdir()):
        return False
    # Compared a block at a time: a data dir of 100 M utterances is not read into memory.
    return all(filecmp.cmp(a / n, b / n, shallow=False) for n in names)


def install_dir(tmp: Path, dst: Path) -> bool:
    """replace_dir, except that an identical `dst` is left untouched (its files keep their times, so a
    rerun changes nothing). Returns whether `dst` changed."""
    if same_files(tmp, dst):
        shutil.rmtree(tmp)
        return False
    replace_dir(tmp, dst)
    return True


# ---- jobs ----------------------------------------------------------------------------------

def map_in_threads(fn: Callable[[T], R], items: Iterable[T], nj: int, bar=None) -> list[R]:
    """fn(item) for each item, nj at a time, the results in the items' order; `bar` (tqdm) advances by
    one per result. The first error in that order is raised once the calls under way have ended."""
    results = []
    with ThreadPoolExecutor(max_workers=max(1, nj)) as pool:
        for result in pool.map(fn, items):
            results.append(result)
            if bar is not None:
                bar.update()
    return results


# ---- command lines -------------------------------------------------------------------------

def exit_status(prog: str, command: Callable[..., object], *args: object,
                errors: tuple[type[BaseException], ...] = (DataDirError,)) -> int:
    """Run command(*args): 0 when it returns; 1 when it raises one of `errors`, printed on stderr as
    `<prog>: <message>` (a bad download or option is the user's to fix: a traceback would not help)."""
    try:
        command(*args)
    except errors as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    return 0


# ---- streaming data dirs -------------------------------------------------------------------
#
# Corpora of ~100 M utterances cannot be held as Utterance lists. A preparation is split into shards
# (a language, say); each shard streams its rows into a DataDirPart, which sorts them on disk in runs
# of ROWS_IN_MEMORY and keeps one sorted file per split. Kaldi tables are sorted by id, so the data
# dirs are a merge of the parts' files, written a line at a time. Duplicate ids meet in the sort.

ROWS_IN_MEMORY = 20_000   # rows a shard sorts in memory before it writes them to a run file
RUNS_PER_MERGE = 64       # runs merged at once (open files); more are first merged into longer runs


def utt_order_key(row: Sequence[str]) -> tuple[bytes, int]:
    """An utterance row (id, order, ...) sorts by id in the C locale, then by where it came from."""
    return row[0].encode("utf-8"), int(row[1])


def pair_key(row: Sequence[str]) -> tuple[bytes, bytes]:
    """A (speaker, utterance) row sorts as spk2utt lists them."""
    return row[0].encode("utf-8"), row[1].encode("utf-8")


def _row_line(row: Sequence[str], where: Path) -> str:
    line = "\t".join(row)
    if "\n" in line or "\r" in line or line.count("\t") != len(row) - 1:
        raise DataDirError(f"{where}: a value holds a TAB or a line break: {row!r}; a Kaldi table cannot hold it")
    return line + "\n"


def read_rows(path: Path) -> Iterator[list[str]]:
    """The TAB-separated rows of a file written by SortedRows or DataDirPart."""
    with open(path, encoding="utf-8", newline="\n") as f:
        for line in f:
            yield line[:-1].split("\t")


class SortedRows:
    """Rows of strings sorted by `key` on disk: every ROWS_IN_MEMORY rows are sorted and written to a
    run file under `folder`; iterating merges the runs. Every RUNS_PER_MERGE runs of one length are
    merged into a longer one, so a merge never opens more than about RUNS_PER_MERGE files per level.
    Memory: one run's rows, whatever the row count."""

    def __init__(self, folder: Path, name: str, key: Callable[[Sequence[str]], object],
                 rows_in_memory: int | None = None):
        self.folder, self.name, self.key = folder, name, key
        self.limit = rows_in_memory or ROWS_IN_MEMORY   # read when made: a test or benchmark may set it
        self.buffer: list[Sequence[str]] = []
        self.levels: list[list[Path]] = [[]]   # runs by length: level k holds merges of RUNS_PER_MERGE^k runs
        self.written = 0

    @property
    def runs(self) -> list[Path]:
        return [run for level in self.levels for run in level]

    def add(self, row: Sequence[str]) -> None:
        self.buffer.append(row)
        if len(self.buffer) >= self.limit:
            self._spill()

    def _new_run(self) -> Path:
        self.written += 1
        return self.folder / f"{self.name}.run{self.written}"

    def _spill(self) -> None:
        run = self._new_run()
        self.buffer.sort(key=self.key)
        with open(run, "w", encoding="utf-8", newline="\n") as f:
            f.writelines(_row_line(row, run) for row in self.buffer)
        self.buffer = []
        self.levels[0].append(run)
        for level, runs in enumerate(self.levels):
            if len(runs) < RUNS_PER_MERGE:
                break
            if level + 1 == len(self.levels):
                self.levels.append([])
            self.levels[level + 1].append(self._merge_runs(runs))
            self.levels[level] = []

    def _merge_runs(self, runs: list[Path]) -> Path:
        merged = self._new_run()
        with open(merged, "w", encoding="utf-8", newline="\n") as f:
            f.writelines("\t".join(row) + "\n" for row in heapq.merge(*map(read_rows, runs), key=self.key))
        for run in runs:
            run.unlink()
        return merged

    def __iter__(self) -> Iterator[Sequence[str]]:
        if not self.runs:
            return iter(sorted(self.buffer, key=self.key))
        if self.buffer:
            self._spill()
        return heapq.merge(*(read_rows(run) for run in self.runs), key=self.key)

    def remove(self) -> None:
        for run in self.runs:
            run.unlink(missing_ok=True)
        self.buffer, self.levels = [], [[]]


def _utts_file(folder: Path, split: str) -> Path:
    return folder / f"{split}.utts"


def _recordings_file(folder: Path, split: str) -> Path:
    return folder / f"{split}.recordings"


def _speakers_file(folder: Path, split: str) -> Path:
    return folder / f"{split}.speakers"


class DataDirPart:
    """One shard's share of a preparation's data dirs, streamed to disk as it is read.

    `tables` names the per-utterance tables in the order of each row's values (wav.scp among them
    when there are no segments; utt2spk gives spk2utt). With segments, each row names its recording
    and wav.scp entry: those are kept per split in memory, one per recording (an event, a session),
    not per utterance. `finish` writes per split `<split>.utts` (id, values...) sorted by id,
    `<split>.recordings` and `<split>.speakers`, which `merge_parts` turns into data dirs."""

    def __init__(self, folder: Path, splits: Sequence[str], tables: Sequence[str]):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.splits, self.tables = folder, tuple(splits), tuple(tables)
        self.speaker_column = self.tables.index("utt2spk") if "utt2spk" in self.tables else None
        self.utts = SortedRows(folder, "utts", utt_order_key)
        self.speakers = {split: SortedRows(folder, f"{split}.spk", pair_key) for split in self.splits}
        self.recordings: dict[str, dict[str, str]] = {split: {} for split in self.splits}

    def add(self, split: str, utt: str, order: int, label: str, values: Sequence[str],
            recording: tuple[str, str] | None = None) -> None:
        """An utterance of `split`; `order` (its line) and `label` are what a duplicate error names."""
        self.utts.add((utt, str(order), split, label, *values))
        if self.speaker_column is not None:
            self.speakers[split].add((values[self.speaker_column], utt))
        if recording is not None:
            self.recordings[split][recording[0]] = recording[1]

    def check_id(self, utt: str, order: int, label: str) -> None:
        """A row left out of the data dirs whose id must still not repeat another (as before)."""
        self.utts.add((utt, str(order), "", label))

    def finish(self, duplicate: Callable[[str, str, int, int], str]) -> dict[str, int]:
        """Write the sorted per-split files. A repeated id raises DataDirError(duplicate(id, label, first
        order, repeat's order)): the corpus says which line repeats which. Returns utterances per split."""
        counts = dict.fromkeys(self.splits, 0)
        outs = {split: open(_utts_file(self.folder, split), "w", encoding="utf-8", newline="\n")
                for split in self.splits}
        try:
            previous = None
            for row in self.utts:
                if previous is not None and previous[0] == row[0]:
                    raise DataDirError(duplicate(row[0], row[3], int(previous[1]), int(row[1])))
                previous = row
                if row[2]:
                    outs[row[2]].write(_row_line((row[0], *row[4:]), self.folder))
                    counts[row[2]] += 1
        finally:
            for f in outs.values():
                f.close()
        for split in self.splits:
            with open(_speakers_file(self.folder, split), "w", encoding="utf-8", newline="\n") as f:
                f.writelines(_row_line(row, self.folder) for row in self.speakers[split])
            recordings = sorted(self.recordings[split].items(), key=lambda kv: kaldi_sort_key(kv[0]))
            with open(_recordings_file(self.folder, split), "w", encoding="utf-8", newline="\n") as f:
                f.writelines(_row_line(row, self.folder) for row in recordings)
            self.speakers[split].remove()
        self.utts.remove()
        return counts


def _check_key(path: Path, key: str) -> None:
    if key.split() != [key]:   # empty, or whitespace in it (str.split splits where str.isspace is true)
        raise DataDirError(f"{path}: id {key!r} is empty or contains whitespace")


class _TableFiles:
    """The tables of a data dir being written, one open file each."""

    def __init__(self, folder: Path, names: Iterable[str]):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.files = {name: open(folder / name, "w", encoding="utf-8", newline="\n") for name in names}

    def write(self, name: str, key: str, value: str) -> None:
        """A line of table `name`; its key is checked by the caller (once for all of an utterance's tables)."""
        self.files[name].write(f"{key} {value}\n")

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def merge_parts(parts: Sequence[Path], split: str, tables: Sequence[str], dst: Path) -> tuple[Path, int]:
    """Write the data dir of `split` from the parts' sorted files into `<dst>.tmp` (replacing one a killed
    run left), a line at a time; returns that folder, for replace_dir or install_dir to put in place, and
    its number of utterances. The tables are the bytes write_data_dir would write."""
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    segments = "segments" in tables
    names = list(tables) + (["wav.scp"] if segments else []) + (["spk2utt"] if "utt2spk" in tables else [])
    out = _TableFiles(tmp, names)
    try:
        count = _merge_utterances(parts, split, tables, out)
        if segments:
            _merge_recordings(parts, split, out)
        if "utt2spk" in tables:
            _merge_speakers(parts, split, out)
    finally:
        out.close()
    return tmp, count


def _merge_utterances(parts: Sequence[Path], split: str, tables: Sequence[str], out: _TableFiles) -> int:
    streams = [read_rows(_utts_file(part, split)) for part in parts]
    count, previous, first_table = 0, None, out.folder / tables[0]
    for row in heapq.merge(*streams, key=lambda row: row[0].encode("utf-8")):
        if row[0] == previous:
            raise DataDirError(f"{out.folder}: utterance id '{row[0]}' comes from two shards of the preparation")
        previous = row[0]
        _check_key(first_table, row[0])
        for name, value in zip(tables, row[1:]):
            out.write(name, row[0], value)
        count += 1
    return count


def _merge_recordings(parts: Sequence[Path], split: str, out: _TableFiles) -> None:
    """wav.scp: a recording (a session) that several shards use is written once."""
    streams = [read_rows(_recordings_file(part, split)) for part in parts]
    previous, table = None, out.folder / "wav.scp"
    for rec, wav in heapq.merge(*streams, key=lambda row: row[0].encode("utf-8")):
        if previous is not None and previous[0] == rec:
            if previous[1] != wav:
                raise DataDirError(f"{out.folder / 'wav.scp'}: recording '{rec}' is {previous[1]} in one shard "
                                   f"and {wav} in another")
            continue
        _check_key(table, rec)
        out.write("wav.scp", rec, wav)
        previous = (rec, wav)


def _merge_speakers(parts: Sequence[Path], split: str, out: _TableFiles) -> None:
    """spk2utt, a speaker at a time: the parts' (speaker, utterance) rows are sorted as it lists them."""
    streams = [read_rows(_speakers_file(part, split)) for part in parts]
    speaker, utts, table = None, [], out.folder / "spk2utt"
    for spk, utt in heapq.merge(*streams, key=pair_key):
        if spk != speaker:
            _check_key(table, spk)
            if speaker is not None:
                out.write("spk2utt", speaker, " ".join(utts))
            speaker, utts = spk, []
        utts.append(utt)
    if speaker is not None:
        out.write("spk2utt", speaker, " ".join(utts))


# ---- shard jobs ----------------------------------------------------------------------------

def parts_folder(out: Path) -> Path:
    """Where a preparation keeps its shards until the data dirs under `out` are written: beside `out`,
    so that a preparation that fails before writing leaves `out` as it was."""
    return out.with_name(out.name + ".parts")


@dataclass
class ShardJob:
    """One unit of a preparation: `run(folder, *args)` writes its outputs under `folder` (emptied first)
    and returns a JSON-able summary. A stamp `<folder>.done`, written after the outputs, holds
    `inputs` (what the outputs depend on) and the summary, so a rerun on the same inputs skips it."""
    name: str
    inputs: dict
    run: Callable[..., dict]
    args: tuple = ()


def _stamp_of(folder: Path) -> Path:
    return folder.with_name(folder.name + ".done")


def finished_summary(folder: Path, inputs: dict) -> dict | None:
    """The summary of a shard finished with these inputs, or None."""
    stamp = _stamp_of(folder)
    if not (stamp.is_file() and folder.is_dir()):
        return None
    try:
        written = json.loads(stamp.read_text(encoding="utf-8"))
    except ValueError:
        return None   # damaged: the shard is redone
    return written.get("summary") if written.get("inputs") == inputs else None


def run_shard(job: ShardJob, folder: Path) -> dict:
    """Run one job from scratch and stamp it (in the process that did the work, so a kill of the
    parent cannot lose a finished shard)."""
    _stamp_of(folder).unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    summary = job.run(folder, *job.args)
    atomic_write_text(_stamp_of(folder), json.dumps({"inputs": job.inputs, "summary": summary}, indent=1,
                                                    ensure_ascii=False) + "\n")
    return summary


def run_shards(jobs: Sequence[ShardJob], work: Path, nj: int, progress: bool = False,
               desc: str = "shards") -> dict[str, dict]:
    """Each job's summary, by name: jobs finished earlier with the same inputs are not redone; the others
    run `nj` at a time in worker processes. On an error the jobs not started are cancelled, those under
    way finish (and are stamped), and the error of the first failed job in the given order is raised."""
    work.mkdir(parents=True, exist_ok=True)
    summaries = {job.name: finished_summary(work / job.name, job.inputs) for job in jobs}
    todo = [job for job in jobs if summaries[job.name] is None]
    if jobs:
        log.info("%s: %d shard(s) done earlier, %d to run%s", desc, len(jobs) - len(todo), len(todo),
                 f" ({' '.join(job.name for job in todo)})" if todo else "")
    with tqdm(total=len(todo), desc=desc, unit=" shards", disable=not progress or not todo) as bar:
        if nj <= 1 or len(todo) <= 1:
            for job in todo:
                summaries[job.name] = run_shard(job, work / job.name)
                bar.update()
        else:
            _run_in_processes(todo, work, nj, summaries, bar)
    return summaries


def _run_in_processes(todo: Sequence[ShardJob], work: Path, nj: int, summaries: dict, bar) -> None:
    first_error: BaseException | None = None
    with ProcessPoolExecutor(max_workers=nj) as pool:
        futures = [pool.submit(run_shard, job, work / job.name) for job in todo]
        for job, future in zip(todo, futures):
            try:
                summaries[job.name] = future.result()
            except CancelledError:
                continue
            except Exception as e:   # noqa: BLE001 - raised below, once the jobs under way have ended
                first_error = first_error or e
                for other in futures:
                    other.cancel()
            bar.update()
    if first_error is not None:
        raise first_error


# ---- one part of the shards per job of a job array ------------------------------------------
#
# `--part J/N` runs the J-th of N interleaved parts of a preparation's shards, so that a Kaldi job array
# (`$train_cmd JOB=1:N log/prepare.JOB.log ... --part JOB/N`: run.pl on one machine, slurm.pl across
# nodes) spreads them; each shard is stamped as in one command, and the call without --part afterwards
# finds them all done and only merges. A part does no work that other languages' shards share (an
# archive of every language, a table of every language): the corpus does it before the job array, or
# refuses the part, saying what to run.

@dataclass(frozen=True)
class Part:
    """The J-th of N parts: the shards whose index i (in the language order) has i % N == J - 1."""
    index: int   # J, from 1
    count: int   # N

    def __post_init__(self):
        if not 1 <= self.index <= self.count:
            raise ValueError(f"part {self.index}/{self.count}: expected J/N with 1 <= J <= N")

    @classmethod
    def parse(cls, spec: str) -> "Part":
        """`2/4` -> Part(2, 4); anything else is a ValueError that says what is expected."""
        match = re.fullmatch(r"\s*([0-9]+)/([0-9]+)\s*", spec)
        if not (match and 1 <= int(match[1]) <= int(match[2])):
            raise ValueError(f"--part {spec!r}: expected J/N, the job's number J and the number of jobs N with "
                             f"1 <= J <= N (e.g. --part 2/4, or --part JOB/4 in a run.pl or slurm.pl job array)")
        return cls(int(match[1]), int(match[2]))

    def take(self, items: Sequence[T]) -> list[T]:
        """This part's share of `items`, in their order; empty when there are more parts than items."""
        return [item for i, item in enumerate(items) if i % self.count == self.index - 1]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def _part_type(spec: str) -> Part:
    try:
        return Part.parse(spec)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_part_option(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """`--part J/N`, parsed the same for every preparer; `help` for one whose shards are not languages."""
    parser.add_argument("--part", type=_part_type, metavar="J/N",
                        help=help or "prepare only the J-th of N parts of the languages (a job of a job array: "
                                     "--part JOB/N under run.pl or slurm.pl), stamp them and stop before the merge; "
                                     "the same command without --part then merges, redoing no finished language")


@dataclass
class PartDone:
    """What a `--part` call did: the shards of the part (each done now or found done earlier), or
    nothing when the data dirs were already written from the same inputs."""
    part: Part
    shards: list[str]
    work: Path
    up_to_date: bool = False

    def line(self) -> str:
        if self.up_to_date:
            return f"part {self.part}: the data dirs are up to date; nothing to do"
        shards = " ".join(self.shards) if self.shards else "none (more parts than languages)"
        return (f"part {self.part}: shard(s) {shards} stamped in {self.work}; once every part is done, the same "
                f"command without --part merges them")


# ---- reading a data dir as a stream --------------------------------------------------------
#
# DataDir loads every table; a data dir of 100 M utterances does not fit. Its tables are sorted by
# utterance id, so they can be read in step, a line of each at a time, with the checks DataDir and
# validate() make (what the messages name is the same: file, line, utterance, what to run).

FIX = "python -m mslam.bin.data_dir fix DIR"


def iter_table(path: Path, allow_empty_value: bool = False, check_sorted: bool = True
               ) -> Iterator[tuple[int, str, str]]:
    """(line, key, value) of a sorted Kaldi table, checked as read_table checks it: UTF-8, no empty
    line or value, C-locale order, no repeated id (in a sorted table a repeat is the line before;
    unsorted, only a repeat on the next line is seen)."""
    previous, previous_line = None, 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            key, value = parse_table_line(path, lineno, raw, allow_empty_value)
            if key == previous:
                raise DataDirError(f"{path}:{lineno}: duplicate id '{key}' (first on line {previous_line})")
            if check_sorted and previous is not None and kaldi_sort_key(key) < kaldi_sort_key(previous):
                raise DataDirError(f"{path}:{lineno}: id '{key}' is out of order after '{previous}'; Kaldi tables "
                                   f"are sorted in the C locale (fix with: {FIX})")
            previous, previous_line = key, lineno
            yield lineno, key, value


class _Cursor:
    """The current line of a table read in step with the others."""

    def __init__(self, path: Path, allow_empty_value: bool):
        self.path, self.lines = path, iter_table(path, allow_empty_value)
        self.advance()

    def advance(self) -> None:
        self.line, self.key, self.value = next(self.lines, (0, None, None))
        self.sort_key = None if self.key is None else kaldi_sort_key(self.key)

    def take(self, utt: str, utt_key: bytes) -> tuple[int, str] | None:
        """This table's (line, value) for `utt`, or None; keys before it (not utterances) are passed over."""
        while self.sort_key is not None and self.sort_key < utt_key:
            self.advance()
        if self.key != utt:
            return None
        found = (self.line, self.value)
        self.advance()
        return found


def table_names(path: Path) -> list[str]:
    """The tables DataDir reads, in its order."""
    names = [n for n in ("wav.scp", "segments", *UTT_TABLES) if (path / n).is_file()]
    return names + sorted(p.name for p in path.glob("text.*") if p.is_file() and not p.name.endswith(".tmp"))


class _CrossTableProblems:
    """What DataDir.problems() finds when tables disagree, counted as the rows stream by: per table, how
    many utterances it lacks and the first of them (the least id, as DataDir names it), and the segments
    whose recording wav.scp lacks. Only counts and first ids are held."""

    def __init__(self, path: Path):
        self.path = path
        self.missing: dict[str, list] = {}   # table -> [count, first utterance]
        self.orphans: list = [0, None, None]   # [count, first utterance, its recording]
        self.speakers: str | None = None

    @property
    def found(self) -> bool:
        return bool(self.missing or self.orphans[0] or self.speakers)

    def lacks(self, name: str, utt: str) -> None:
        self.missing.setdefault(name, [0, utt])[0] += 1

    def orphan(self, utt: str, recording: str) -> None:
        self.orphans = [self.orphans[0] + 1, self.orphans[1] or utt, self.orphans[2] or recording]

    def lines(self, names: list[str]) -> list[str]:
        """DataDir.problems()'s lines, in its order, each saying what to run."""
        order = [n for n in names if n != "wav.scp"] + ["wav.scp"]
        found = [f"{self.path / name}: {count} utterance(s) that other tables have are missing, e.g. '{first}' "
                 f"(keep only the utterances all tables have: {FIX})"
                 for name in order if name in self.missing for count, first in [self.missing[name]]]
        count, utt, recording = self.orphans
        if count:
            found.append(f"{self.path / 'segments'}: {count} segment(s) name a recording missing from wav.scp, "
                         f"e.g. '{utt}' -> '{recording}' (keep only the segments whose recording it has: {FIX})")
        return found + ([self.speakers] if self.speakers else [])

    def error(self, names: list[str]) -> DataDirError:
        return DataDirError(f"invalid data dir {self.path}:\n  " + "\n  ".join(self.lines(names)))


def iter_data_dir(path: Path) -> Iterator[tuple[str, dict[str, tuple[int, str]]]]:
    """(utterance id, {table: (line, value)}) in id order, the tables read in step. The utterances are
    the ids of the per-utterance tables (of wav.scp when it is the only table). With segments, wav.scp
    is read whole (a line per recording: far fewer than utterances) and each row's "wav.scp" is its
    recording's entry. Raises DataDirError as DataDir(path).validate() would: at once for a malformed
    table; for tables that disagree, after reading them to their end (no row is yielded after the first
    disagreement), with DataDir's lines: how many utterances each table lacks, and the first."""
    path = Path(path)
    if not path.is_dir():
        raise DataDirError(f"{path}: not a directory")
    names = table_names(path)
    if not {"wav.scp", "feats.scp", "text"} & set(names):
        raise DataDirError(f"{path}: no wav.scp, feats.scp or text; not a data dir")
    problems = _CrossTableProblems(path)
    for utt, row in _rows_in_step(path, names, problems):
        if not problems.found:
            yield utt, row
    if problems.found:
        raise problems.error(names)


def _rows_in_step(path: Path, names: list[str], problems: _CrossTableProblems
                  ) -> Iterator[tuple[str, dict[str, tuple[int, str]]]]:
    """Every utterance's row, also those a table lacks (counted in `problems`); the tables are read to
    their end, so a malformed line anywhere raises its own error (file:line)."""
    recordings = read_table(path / "wav.scp") if {"segments", "wav.scp"} <= set(names) else None
    drivers = [n for n in names if n != "wav.scp"] or ["wav.scp"]
    cursors = {n: _Cursor(path / n, n == "text" or n.startswith("text.")) for n in drivers}
    wav = _Cursor(path / "wav.scp", False) if "wav.scp" in names and recordings is None and "wav.scp" not in cursors \
        else None
    speakers = _SpeakerCheck(path) if "utt2spk" in names and (path / "spk2utt").is_file() else None
    while True:
        lowest = min((c.sort_key for c in cursors.values() if c.key is not None), default=None)
        if lowest is None:
            break
        utt = next(c.key for c in cursors.values() if c.sort_key == lowest)
        row = {}
        for name, cursor in cursors.items():
            found = cursor.take(utt, lowest)
            if found is not None:
                row[name] = found
            elif name != "segments":   # an utterance without a segment is its whole recording
                problems.lacks(name, utt)
        _check_row(path, utt, row)
        if recordings is not None:
            _add_recording(row, utt, recordings, problems)
        elif wav is not None:
            found = wav.take(utt, lowest)
            if found is None:
                problems.lacks("wav.scp", utt)
            else:
                row["wav.scp"] = found
        if speakers is not None and "utt2spk" in row:
            speakers.add(row["utt2spk"][1], utt)
        yield utt, row
    if wav is not None:
        for _ in wav.lines:   # its lines past the last utterance are checked too, as DataDir reads them
            pass
    if speakers is not None:
        problems.speakers = speakers.mismatch()


def _add_recording(row: dict[str, tuple[int, str]], utt: str, recordings: dict[str, str],
                   problems: _CrossTableProblems) -> None:
    """The row's wav.scp entry: its segment's recording (its own id without a segment)."""
    rec = row["segments"][1].split()[0] if "segments" in row else utt
    if rec in recordings:
        row["wav.scp"] = (0, recordings[rec])
    elif "segments" in row:
        problems.orphan(utt, rec)


def _check_row(path: Path, utt: str, row: dict[str, tuple[int, str]]) -> None:
    """One utterance's segment and numbers, as DataDir checks them."""
    if "segments" in row:
        line, value = row["segments"]
        fields = value.split()
        if len(fields) != 3:
            raise DataDirError(f"{path / 'segments'}:{line}: expected '<utt-id> <rec-id> <start> <end>', "
                               f"got '{utt} {value}'")
        try:
            start, end = float(fields[1]), float(fields[2])
        except ValueError:
            raise DataDirError(f"{path / 'segments'}:{line}: start/end of '{utt}' are not numbers: "
                               f"{fields[1:]}") from None
        if not 0 <= start < end:
            raise DataDirError(f"{path / 'segments'}:{line}: segment '{utt}' has start {start} and end {end}; "
                               f"expected 0 <= start < end")
    for name, kind in NUMERIC_TABLES.items():
        if name in row:
            line, value = row[name]
            check_positive(path / name, line, utt, value, kind)


class _SpeakerCheck:
    """spk2utt against utt2spk without holding either: both add up a hash of each (speaker, utterance)
    pair, and spk2utt's lines must list their utterances sorted, as utt2spk_to_spk2utt_table does."""

    def __init__(self, path: Path):
        self.path = path / "spk2utt"
        self.from_utt2spk = [0, 0]

    @staticmethod
    def _hash(speaker: str, utt: str) -> int:
        return int.from_bytes(hashlib.blake2b(f"{speaker} {utt}".encode("utf-8"), digest_size=8).digest(), "little")

    def add(self, speaker: str, utt: str) -> None:
        self.from_utt2spk[0] = (self.from_utt2spk[0] + self._hash(speaker, utt)) % (1 << 64)
        self.from_utt2spk[1] += 1

    def mismatch(self) -> str | None:
        """DataDir's line when spk2utt does not match utt2spk; None when it does. A malformed or repeated
        line raises, as read_table does."""
        total, count, well_formed, in_order, previous = 0, 0, True, True, None
        for _, speaker, value in iter_table(self.path, check_sorted=False):   # DataDir does not ask it sorted
            utts = value.split()
            well_formed = well_formed and utts == sorted(utts, key=kaldi_sort_key) and " ".join(utts) == value
            in_order = in_order and (previous is None or kaldi_sort_key(previous) < kaldi_sort_key(speaker))
            previous = speaker
            for utt in utts:
                total = (total + self._hash(speaker, utt)) % (1 << 64)
            count += len(utts)
        if not in_order:
            self._check_no_repeat()
        if well_formed and [total, count] == self.from_utt2spk:
            return None
        return f"{self.path}: does not match utt2spk (regenerate it: python -m mslam.bin.data_dir fix)"

    def _check_no_repeat(self) -> None:
        """A speaker on two lines, as read_table finds it. Sorted, iter_table saw any repeat (the line
        before); this file is not, so its speakers are held: only for a spk2utt not written here."""
        first_line: dict[str, int] = {}
        for line, speaker, _ in iter_table(self.path, check_sorted=False):
            if speaker in first_line:
                raise DataDirError(f"{self.path}:{line}: duplicate id '{speaker}' (first on line {first_line[speaker]})")
            first_line[speaker] = line
