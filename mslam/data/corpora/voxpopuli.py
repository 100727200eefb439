"""VoxPopuli (facebookresearch/voxpopuli): what to download, and Kaldi data dirs from the download.

Two parts of the corpus serve the recipes:

    unlabelled  audios/<lang>_<year>.tar          <lang>/<year>/<event_id>.ogg  (one recording per event)
                annotations/unlabelled_v2.tsv.gz  TAB: event_id segment_no start end (seconds)
    asr         audios/original_<year>.tar        original/<year>/<session_id>_original.ogg (floor audio)
                annotations/asr/asr_<lang>.tsv.gz '|', 14 columns, of which: id_ session_id speaker_id
                                                   normed_text vad ([start, end] pairs) split gender

The tars are extracted once into <root>/raw_audios/, the layout the corpus's own download tool makes
(so a root that already holds raw_audios/ is used as is, archives or not). Utterances are segments of
those recordings:

    unlabelled -> <out>/train                 ids <event_id>_<segment_no>, speaker = the event
    asr        -> <out>/{train,dev,test}      ids <session_id>-<id_>, text = normed_text, utt2gender

An ASR row whose `vad` holds several pieces is the pieces joined end to end, as the corpus's own
get_asr_data.py makes it: what lies between them (noise, another speaker) is not part of the utterance.
Such an utterance cannot be one segment of the session, so its audio is written once, as FLAC, to
<out>/joined_audio/<lang>/<year>/<id>.flac, and its segment is that whole file; single-piece rows
(and pieces that touch) stay segments of the session recording, so nothing is copied for them.
Rows with an empty transcript are left out (they would teach CTC to emit nothing), counted per language.

Unlabelled speech has no splits, and pre-training wants only a train set, so nothing is held out.

At full scale the unlabelled table holds about 100 M segments, so nothing is held per utterance: each
language is a shard (`--nj` of them at once, in processes) that streams its rows into sorted files
under <out>.parts/ and is stamped when done, a killed run redoes only the unfinished languages, and
the data dirs are a merge of the shards' files (mslam.data.corpora.common.DataDirPart). What is held
is per recording (an event, a session) and per multi-piece ASR row.

On a cluster the shards run as a job array: `prepare_shared` does the work they share (the split of the
unlabelled table by language; the ASR session archives, which hold every language), then each job
prepares its part of the languages (`part=J/N`, extracting its own unlabelled archives), then the call
without a part merges them, redoing no finished shard.
"""
from __future__ import annotations

import ast
import csv
import gzip
import json
import logging
import math
import os
import shlex
import shutil
import tarfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import soundfile
from tqdm import tqdm

from mslam.data.archives import archive_problem
from mslam.data.audio import AudioError
from mslam.data.corpora.common import (DataDirPart, Part, PartDone, ShardJob, check_codes, extraction_folder,
                                       map_in_threads, merge_parts, parts_folder, replace_dir, run_shards)
from mslam.data.kaldi import DataDirError, atomic_write_text, read_table

log = logging.getLogger("mslam.data.corpora.voxpopuli")

# voxpopuli/__init__.py: LANGUAGES (unlabelled speech), ASR_LANGUAGES (transcribed), YEARS.
# en_accented (a test-only set with extra columns) is left out.
LANGUAGES = ("en", "de", "fr", "es", "pl", "it", "ro", "hu", "cs", "nl", "fi", "hr", "sk", "sl", "et", "lt",
             "pt", "bg", "el", "lv", "mt", "sv", "da")
ASR_LANGUAGES = LANGUAGES[:16]
YEARS = tuple(str(y) for y in range(2009, 2021))
WHATS = ("unlabelled", "asr")
ASR_SPLITS = ("train", "dev", "test")

UNLABELLED_TABLE = "annotations/unlabelled_v2.tsv.gz"
UNLABELLED_COLUMNS = ("event_id", "segment_no", "start", "end")
ASR_COLUMNS = ("id_", "session_id", "speaker_id", "normed_text", "vad", "split", "gender")
RAW_AUDIOS = "raw_audios"
JOINED_AUDIO = "joined_audio"   # under <out>: utterances of several VAD pieces
RERUN_DOWNLOAD = ("the recipe's download stage (./run.sh --stage 1 --stop-stage 1, with the same --langs and "
                  "--local-opts)")
FIX_DOWNLOAD = f"run {RERUN_DOWNLOAD}, or point VOXPOPULI in db.sh at a complete copy"


def refetch(*paths: Path) -> str:
    """What to run about downloaded files that are there but damaged or incomplete."""
    return (f"delete {' '.join(map(str, paths))} and run {RERUN_DOWNLOAD} again, then this stage (with VOXPOPULI "
            "in db.sh pointing at a copy: repair the copy)")


# ---- the selection and its files -----------------------------------------------------------

def languages_of(what: str) -> tuple[str, ...]:
    if what not in WHATS:
        raise DataDirError(f"unknown VoxPopuli part '{what}'; expected one of: {', '.join(WHATS)}")
    return LANGUAGES if what == "unlabelled" else ASR_LANGUAGES


def check_selection(what: str, langs: list[str] | None, years: list[str] | None) -> tuple[list[str], list[str]]:
    """The languages and years to use (all of them where None), each checked against the corpus's lists."""
    valid = languages_of(what)
    langs = check_codes(valid if langs is None else langs, valid, f"VoxPopuli {what} language(s)",
                        f"valid ones: {' '.join(valid)}")
    years = check_codes(YEARS if years is None else years, YEARS, "VoxPopuli year(s)",
                        f"valid ones: {YEARS[0]}..{YEARS[-1]}")
    return langs, years


def asr_table(lang: str) -> str:
    return f"annotations/asr/asr_{lang}.tsv.gz"


def audio_tars(what: str, langs: list[str], years: list[str], v2: bool = False) -> list[str]:
    """The audio archives of a selection (paths under the download base)."""
    if what == "asr":
        return [f"audios/original_{year}.tar" for year in years]
    # The `<lang>_v2` subset adds a second archive per year (events outside the plenary). ASSUMPTION:
    # it unpacks into the same <lang>/<year>/ folders, and the first archives hold every plenary event.
    suffixes = ("", "_2") if v2 else ("",)
    return [f"audios/{lang}_{year}{suffix}.tar" for lang in langs for year in years for suffix in suffixes]


def files(whats: list[str], langs: list[str] | None = None, years: list[str] | None = None,
          v2: bool = False) -> list[str]:
    """Every path under the download base that a selection needs, annotations first."""
    paths: list[str] = []
    for what in whats:
        chosen_langs, chosen_years = check_selection(what, langs, years)
        paths += [UNLABELLED_TABLE] if what == "unlabelled" else [asr_table(lang) for lang in chosen_langs]
        paths += audio_tars(what, chosen_langs, chosen_years, v2)
    return list(dict.fromkeys(paths))


# ---- reading the download ------------------------------------------------------------------

def find_table(root: Path, rel: str, official: str) -> Path:
    """A manifest where the download stage puts it (<root>/<rel>) or where the corpus's own tools do."""
    for path in (root / rel, root / official):
        if path.is_file():
            return path
    raise DataDirError(f"{root / rel}: not found (nor {root / official}); {FIX_DOWNLOAD}")


def read_manifest(path: Path, delimiter: str, needed: tuple[str, ...],
                  progress: bool) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a gzip'd delimited table with a header, every row checked for its field count."""
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
            # The csv module's default dialect, as the corpus's own scripts read these tables.
            reader = csv.reader(f, delimiter=delimiter)
            header = next(reader, None)
            missing = [c for c in needed if c not in (header or [])]
            if missing:
                raise DataDirError(f"{path}:1: header {header} lacks column(s) {', '.join(missing)}; "
                                   f"expected a {delimiter!r}-separated header naming {', '.join(needed)}")
            for row in tqdm(reader, desc=path.name, unit=" rows", disable=not progress, mininterval=1.0):
                lineno = reader.line_num
                if len(row) != len(header):
                    raise DataDirError(f"{path}:{lineno}: {len(row)} field(s), expected {len(header)} "
                                       f"({delimiter.join(header)}); the table is damaged: {refetch(path)}")
                yield lineno, dict(zip(header, row))
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as e:
        raise DataDirError(f"{path}: cannot read ({e}); the download is damaged or cut short: "
                           f"{refetch(path)}") from None


def _seconds(value: str, where: str, what: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise DataDirError(f"{where}: {what} '{value}' is not a number of seconds") from None
    if not (math.isfinite(seconds) and seconds >= 0):
        raise DataDirError(f"{where}: {what} '{value}' is negative or not finite")
    return seconds


def _year_of(key: str, where: str, column: str) -> str:
    # Event and session ids start with their date (YYYYMMDD-...), as the corpus's own scripts assume.
    if key[:4] not in YEARS:
        raise DataDirError(f"{where}: {column} '{key}' does not start with a year {YEARS[0]}..{YEARS[-1]}")
    return key[:4]


@dataclass
class Recording:
    """A recording the utterances use, with what an error about it needs to say."""
    path: Path                   # <root>/raw_audios/<lang>/<year>/<name>.ogg
    archives: tuple[str, ...]    # the archive(s) under <root> that hold it
    last_start: float = 0.0      # the latest segment start, and the row that has it
    last_row: str = ""

    def use(self, start: float, where: str) -> None:
        if start >= self.last_start:
            self.last_start, self.last_row = start, where

    def fix_missing(self) -> str:
        root = self.path.parents[3]
        absent = [a for a in self.archives if not (root / a).is_file()]
        if absent:
            return f"it comes in {' or '.join(self.archives)} ({', '.join(absent)} not downloaded): {FIX_DOWNLOAD}"
        # Extracted, yet without this file: the archive is incomplete or of another release.
        present = [root / a for a in self.archives]
        return f"{' and '.join(map(str, present))} did not hold it when extracted: {refetch(*present)}"

    def fix_damaged(self) -> str:
        raw, root = self.path.parents[2], self.path.parents[3]
        stamps = " ".join(str(_stamp(raw, Path(a))) for a in self.archives)
        return (f"to extract it again, delete {stamps} and rerun this stage; if the archive holds it damaged too, "
                f"{refetch(*(root / a for a in self.archives))}")


@dataclass
class Tally:
    """What preparation kept and left out of one language: a line of the stage summary."""
    kept: Counter[str] = field(default_factory=Counter)      # utterances per split
    dropped: Counter[str] = field(default_factory=Counter)   # manifest rows per reason
    joined: int = 0                                          # kept utterances made of several VAD pieces

    def as_json(self) -> dict:
        return {"kept": dict(self.kept), "dropped": dict(self.dropped), "joined": self.joined}

    def line(self) -> str:
        return tally_line(self.as_json())


def tally_line(entry: dict) -> str:
    """`kept 4 (train 2, dev 1, test 1; 1 joined from VAD pieces); dropped 1 (split 'invalid' 1)`."""
    splits = ", ".join(f"{split} {n}" for split, n in entry["kept"].items())
    joined = f"; {entry['joined']} joined from VAD pieces" if entry["joined"] else ""
    reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(entry["dropped"].items()))
    return (f"kept {sum(entry['kept'].values())}" + (f" ({splits}{joined})" if splits else "")
            + f"; dropped {sum(entry['dropped'].values())}" + (f" ({reasons})" if reasons else ""))


# ---- unlabelled speech: one shard per language ---------------------------------------------
#
# The unlabelled table lists every language's segments in one gzip'd file (about 100 M rows at full
# scale). Pass one copies the chosen languages' rows, as they stream, into a file per language;
# the languages are then shards, done in parallel and resumed one by one (mslam.data.corpora.common).

UNLABELLED_TABLES = ("segments", "utt2spk", "utt2lang")   # the per-utterance tables, in row order


def _rows_file(work: Path, lang: str) -> Path:
    return work / "rows" / f"{lang}.tsv"


def _split_inputs(table: Path, langs: list[str]) -> dict:
    return {"table": str(table), "stat": [table.stat().st_size, table.stat().st_mtime_ns], "langs": langs}


def split_done(table: Path, work: Path, langs: list[str]) -> bool:
    """Whether `<work>/rows/` holds a finished split of this table for these languages."""
    stamp = work / "rows.done"
    return stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")) == _split_inputs(table, langs)


def split_unlabelled(table: Path, work: Path, langs: list[str], progress: bool) -> None:
    """Write `<work>/rows/<lang>.tsv` (line, event_id, segment_no, start, end) for each chosen language,
    unless a finished split of the same table and languages is there (its stamp is written last)."""
    if split_done(table, work, langs):
        return
    stamp = work / "rows.done"
    inputs = _split_inputs(table, langs)
    stamp.unlink(missing_ok=True)
    folder = work / "rows"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    outs = {lang: open(_rows_file(work, lang), "w", encoding="utf-8", newline="\n") for lang in langs}
    try:
        for lineno, row in read_manifest(table, "\t", UNLABELLED_COLUMNS, progress):
            event = row["event_id"]
            where = f"{table}:{lineno}"
            _year_of(event, where, "event_id")
            out = outs.get(event.rsplit("_", 1)[-1])
            if out is not None:
                line = "\t".join([str(lineno)] + [row[column] for column in UNLABELLED_COLUMNS])
                if line.count("\t") != len(UNLABELLED_COLUMNS) or "\n" in line or "\r" in line:
                    raise DataDirError(f"{where}: a field holds a TAB or a line break; the table is damaged: "
                                       f"{refetch(table)}")
                out.write(line + "\n")
    finally:
        for out in outs.values():
            out.close()
    atomic_write_text(stamp, json.dumps(inputs) + "\n")


def _duplicate_segment(table: Path) -> Callable[[str, str, int, int], str]:
    def message(utt: str, label: str, first: int, repeat: int) -> str:
        event, segment_no = utt.rsplit("_", 1)
        return f"{table}:{repeat}: segment {segment_no} of event '{event}' is also on line {first}"
    return message


def unlabelled_shard(folder: Path, table: Path, rows: Path, raw: Path, lang: str, years: list[str], v2: bool,
                     threads: int) -> dict:
    """One language's segments into a DataDirPart under `folder`, its recordings checked. Without v2 only
    plenary events are kept, as the corpus's own per-language subsets do: the other events' audio is in
    the `_2` archives. Returns its tally (Tally.as_json)."""
    part = DataDirPart(folder, ("train",), UNLABELLED_TABLES)
    recordings: dict[str, Recording] = {}
    tally = Tally(kept=Counter(train=0))
    with open(rows, encoding="utf-8", newline="\n") as f:
        for line in f:
            lineno, event, segment_no, start, end = line[:-1].split("\t")
            where = f"{table}:{lineno}"
            year = event[:4]   # checked by split_unlabelled
            if year not in years:
                tally.dropped["a year not chosen"] += 1
                continue
            if not v2 and "PLENARY" not in event:
                tally.dropped["non-plenary event (needs --v2)"] += 1
                continue
            # segment_no as written: the corpus's own tool names its files with it
            if not segment_no.isdigit():
                raise DataDirError(f"{where}: segment_no '{segment_no}' is not a whole number")
            start, end = _seconds(start, where, "start"), _seconds(end, where, "end")
            if not start < end:
                raise DataDirError(f"{where}: start {start} is not before end {end}")
            if event not in recordings:
                archives = (f"audios/{lang}_{year}.tar",) + ((f"audios/{lang}_{year}_2.tar",) if v2 else ())
                recordings[event] = Recording(raw / lang / year / f"{event}.ogg", archives)
            recordings[event].use(start, where)
            part.add("train", f"{event}_{segment_no}", int(lineno), "",
                     (f"{event} {start:.3f} {end:.3f}", event, lang), (event, str(recordings[event].path)))
            tally.kept["train"] += 1
    check_recordings(recordings, threads, progress=False)
    part.finish(_duplicate_segment(table))
    return tally.as_json()


def vad_pieces(value: str, where: str) -> list[tuple[float, float]]:
    """An utterance's VAD pieces, a Python list of [start, end] seconds, ordered and not overlapping.
    Pieces that touch are merged: joined end to end they are the same audio as one segment."""
    try:
        pieces = ast.literal_eval(value)
        spans = [(float(s), float(e)) for s, e in pieces]
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise DataDirError(f"{where}: vad '{value}' is not a list of [start, end] pairs") from None
    if not spans:
        raise DataDirError(f"{where}: vad is empty; expected at least one [start, end] pair")
    for (start, end), following in zip(spans, spans[1:] + [None]):
        if not 0 <= start < end or (following is not None and following[0] < end):
            raise DataDirError(f"{where}: vad '{value}' is not a list of ordered, non-overlapping spans")
    merged = [spans[0]]
    for start, end in spans[1:]:
        if start == merged[-1][1]:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


# ---- ASR: one shard per language -------------------------------------------------------------

ASR_TABLES = ("segments", "text", "utt2spk", "utt2lang", "utt2gender")   # the per-utterance tables, in row order


@dataclass
class Join:
    """An utterance made of several pieces of a session recording, written to its own file."""
    utt: str
    dest: Path              # the FLAC file to write
    source: Recording
    pieces: list[tuple[float, float]]
    where: str              # the manifest row
    split: str = ""
    line: int = 0
    values: tuple[str, ...] = ()   # its ASR_TABLES row; the segment becomes the whole file once its length is known

    def as_json(self) -> dict:
        return {"utt": self.utt, "dest": str(self.dest), "source": str(self.source.path),
                "archives": list(self.source.archives), "pieces": self.pieces, "where": self.where}

    @classmethod
    def from_json(cls, entry: dict) -> "Join":
        return cls(entry["utt"], Path(entry["dest"]), Recording(Path(entry["source"]), tuple(entry["archives"])),
                   [tuple(p) for p in entry["pieces"]], entry["where"])


def _duplicate_utterance(table: Path) -> Callable[[str, str, int, int], str]:
    def message(utt: str, label: str, first: int, repeat: int) -> str:
        return f"{table}:{repeat}: utterance '{utt}' is also on line {first}"
    return message


def asr_shard(folder: Path, table: Path, raw: Path, joined: Path, lang: str, years: list[str], threads: int,
              progress: bool) -> dict:
    """One language's table into a DataDirPart under `folder`: (utterance, gender) per split, and the
    tally of what was kept and left out. Rows the corpus marks unusable (a split other than
    train/dev/test, e.g. `invalid`) and rows without a transcript are counted and left out. Its
    recordings are checked; its multi-piece utterances get their joined length, and are listed in
    `<folder>/joins.jsonl` for `write_joins` (only their rows are held in memory: they are few)."""
    part = DataDirPart(folder, ASR_SPLITS, ASR_TABLES)
    recordings: dict[str, Recording] = {}
    joins: list[Join] = []
    tally = Tally(kept=Counter(dict.fromkeys(ASR_SPLITS, 0)))   # every split shown, in this order
    for lineno, row in read_manifest(table, "|", ASR_COLUMNS, progress):
        where = f"{table}:{lineno}"
        session = row["session_id"]
        year = _year_of(session, where, "session_id")
        if row["split"] not in ASR_SPLITS:
            tally.dropped[f"split '{row['split']}'"] += 1
            continue
        if year not in years:
            tally.dropped["a year not chosen"] += 1
            continue
        utt = f"{session}-{row['id_']}"
        if not row["id_"] or any(c.isspace() for c in utt):
            raise DataDirError(f"{where}: id_ '{row['id_']}' is empty or contains whitespace")
        speaker = row["speaker_id"]
        if not speaker or any(c.isspace() for c in speaker):
            raise DataDirError(f"{where}: speaker_id '{speaker}' is empty or contains whitespace")
        pieces = vad_pieces(row["vad"], where)
        text = " ".join(row["normed_text"].split())
        if not text:
            tally.dropped["empty transcript"] += 1
            part.check_id(utt, lineno, "")   # a repeated id is an error, kept row or not
            continue
        rec = f"{session}_original"
        if rec not in recordings:
            recordings[rec] = Recording(raw / "original" / year / f"{rec}.ogg", (f"audios/original_{year}.tar",))
        recordings[rec].use(pieces[-1][0], where)
        # ASSUMPTION: an empty gender is written as `unknown` (a Kaldi table needs a value).
        gender = "_".join(row["gender"].split()) or "unknown"
        values = (f"{rec} {pieces[0][0]:.3f} {pieces[0][1]:.3f}", text, speaker, lang, gender)
        if len(pieces) > 1:
            joins.append(Join(utt, joined / lang / year / f"{utt}.flac", recordings[rec], pieces, where,
                              row["split"], lineno, values))
            tally.joined += 1
        else:
            part.add(row["split"], utt, lineno, "", values, (rec, str(recordings[rec].path)))
        tally.kept[row["split"]] += 1
    check_recordings(recordings, threads, progress=False)
    for join in joins:
        end = joined_seconds(join)
        part.add(join.split, join.utt, join.line, "", (f"{join.utt} 0.000 {end:.3f}", *join.values[1:]),
                 (join.utt, str(join.dest)))
    with open(folder / "joins.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(join.as_json()) + "\n" for join in joins)
    part.finish(_duplicate_utterance(table))
    return tally.as_json()


# ---- audio ---------------------------------------------------------------------------------

def _stamp(raw: Path, archive: Path) -> Path:
    """Written after a complete extraction; it holds the archive's size and time, so a new download (a fetch
    again after damage) is extracted again."""
    return raw / f".{archive.name}.extracted"


def _stamp_text(archive: Path) -> str:
    stat = archive.stat()
    return f"{stat.st_size} {stat.st_mtime_ns}"


def _extracted(raw: Path, archive: Path) -> bool:
    stamp = _stamp(raw, archive)
    if not stamp.is_file():
        return False
    written = stamp.read_text(encoding="utf-8").split()
    # A stamp of an older version holds the size alone: taken as is rather than extracting again.
    return len(written) in (1, 2) and written == _stamp_text(archive).split()[:len(written)]


def extract_one(archive: Path, raw: Path, bar: tqdm) -> None:
    """Extract into a temporary folder, move the files into place, then write the stamp: a killed
    extraction leaves no stamp and is redone whole. An archive cut short between two members would
    extract without an error, less its later members: it is checked whole first."""
    problem = archive_problem(archive)
    if problem:
        raise DataDirError(f"{archive}: cannot extract ({problem}); {refetch(archive)}")
    hint = f"the archive is damaged or cut short: {refetch(archive)}"
    with extraction_folder(archive, raw / f".{archive.name}.tmp", hint) as tmp, tarfile.open(archive) as tar:
        done = 0
        for member in tar:
            tar.extract(member, tmp, filter="data")   # refuses paths leaving tmp, links out, devices
            bar.update(tar.offset - done)
            done = tar.offset
        bar.update(archive.stat().st_size - done)     # the end-of-archive blocks
    # Every archive of a selection unpacks into the same tree, so files are moved, not the folder.
    for folder, _, names in os.walk(tmp):
        for name in names:
            src = Path(folder) / name
            dst = raw / src.relative_to(tmp)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    atomic_write_text(_stamp(raw, archive), _stamp_text(archive) + "\n")
    shutil.rmtree(tmp)


def extract_audios(root: Path, archives: list[str], nj: int, progress: bool) -> Path:
    """Extract the downloaded archives of a selection into <root>/raw_audios/ (each once); returns that folder.
    Archives not downloaded are passed over: their audio may already be there (checked later)."""
    raw = root / RAW_AUDIOS
    todo = [root / a for a in archives if (root / a).is_file() and not _extracted(raw, root / a)]
    if todo:
        raw.mkdir(parents=True, exist_ok=True)
        total = sum(a.stat().st_size for a in todo)
        with tqdm(total=total, desc="extract", unit="B", unit_scale=True, disable=not progress) as bar:
            map_in_threads(lambda archive: extract_one(archive, raw, bar), todo, nj)
        log.info("extracted %d archive(s) into %s", len(todo), raw)
    return raw


def check_recordings(recordings: dict[str, Recording], nj: int, progress: bool) -> None:
    """Every recording exists, its header reads, and no segment starts past its end."""
    for rec_id, rec in recordings.items():
        if not rec.path.is_file():
            raise DataDirError(f"{rec.path}: audio of '{rec_id}' not found (used from {rec.last_row}); "
                               f"{rec.fix_missing()}")

    def check(item: tuple[str, Recording]) -> None:
        rec_id, rec = item
        try:
            duration = soundfile.info(str(rec.path)).duration
        except (soundfile.LibsndfileError, RuntimeError) as e:
            raise AudioError(f"{rec.path}: cannot read the audio of '{rec_id}' ({e}); {rec.fix_damaged()}") from None
        if rec.last_start >= duration:
            raise DataDirError(f"{rec.last_row}: segment starts at {rec.last_start} s but {rec.path} lasts only "
                               f"{duration:.2f} s; the audio is cut short: {rec.fix_damaged()}")

    with tqdm(total=len(recordings), desc="check audio", unit=" recordings", disable=not progress) as bar:
        map_in_threads(check, recordings.items(), nj, bar)


def _join_bounds(join: Join, info) -> list[tuple[int, int]]:
    rate = info.samplerate
    return [(round(s * rate), min(round(e * rate), info.frames)) for s, e in join.pieces]


def _join_error(join: Join, e: Exception) -> AudioError:
    return AudioError(f"{join.where}: cannot join the VAD pieces of '{join.utt}' from {join.source.path} ({e}); "
                      f"{join.source.fix_damaged()}")


def joined_seconds(join: Join) -> float:
    """The length of the pieces joined end to end, in whole milliseconds rounded up: the segment then
    ends at the file's last sample, not before it."""
    try:
        info = soundfile.info(str(join.source.path))
    except (soundfile.LibsndfileError, RuntimeError) as e:
        raise _join_error(join, e) from None
    frames = sum(max(0, stop - start) for start, stop in _join_bounds(join, info))
    return math.ceil(frames / info.samplerate * 1000) / 1000


def write_join(join: Join) -> None:
    """Write the utterance's pieces, joined end to end, to its FLAC file (kept when an earlier run wrote
    it whole: it is renamed into place only once complete)."""
    source = str(join.source.path)
    try:
        info = soundfile.info(source)
        bounds = _join_bounds(join, info)
        frames = sum(max(0, stop - start) for start, stop in bounds)
        if not (join.dest.is_file() and soundfile.info(str(join.dest)).frames == frames):
            parts = [soundfile.read(source, start=start, stop=stop, dtype="float32", always_2d=True)[0]
                     for start, stop in bounds if stop > start]
            _write_flac(join.dest, np.concatenate(parts), info.samplerate)
    except (soundfile.LibsndfileError, RuntimeError) as e:
        raise _join_error(join, e) from None


def _write_flac(path: Path, samples: np.ndarray, rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    soundfile.write(str(tmp), samples, rate, format="FLAC", subtype="PCM_16")
    os.replace(tmp, path)


def write_joins(parts: list[Path], nj: int, progress: bool) -> None:
    """Write the multi-piece utterances the shards listed (a shard at a time: the lists are short)."""
    total = 0
    for part in parts:
        with open(part / "joins.jsonl", encoding="utf-8") as f:
            joins = [Join.from_json(json.loads(line)) for line in f]
        if joins:
            with tqdm(total=len(joins), desc="join VAD pieces", unit=" utts", disable=not progress) as bar:
                map_in_threads(write_join, joins, nj, bar)
            total += len(joins)
    if total:
        log.info("joined the VAD pieces of %d utterance(s) into their own files", total)


# ---- writing -------------------------------------------------------------------------------

# Bump when what the data dirs hold changes for the same inputs: older outputs are then made again.
OUTPUT_VERSION = 2   # 2: multi-piece VAD rows joined, empty transcripts left out


def _stat(path: Path) -> list[int]:
    return [path.stat().st_size, path.stat().st_mtime_ns]


def _fingerprint(what: str, langs: list[str], years: list[str], v2: bool, raw: Path, tables: list[Path]) -> dict:
    """What the outputs depend on: the selection, where the audio is, and the manifests' sizes and dates."""
    return {"version": OUTPUT_VERSION, "what": what, "langs": langs, "years": years, "v2": v2,
            "raw_audios": str(raw), "tables": {str(t): _stat(t) for t in tables}}


def _outputs_complete(out: Path, splits: list[str]) -> bool:
    """The data dirs are there and so is every recording they name."""
    try:
        return bool(splits) and all(Path(path).is_file() for split in splits
                                    for path in read_table(out / split / "wav.scp").values())
    except DataDirError:
        return False


def _shard_jobs(what: str, tables: list[Path], raw: Path, out: Path, langs: list[str], years: list[str],
                v2: bool, nj: int, progress: bool) -> list[ShardJob]:
    """A job per language; what each depends on is in its `inputs`, so a rerun redoes only what changed."""
    threads = max(1, nj // len(langs))   # audio checks within a job, when there are fewer jobs than nj
    shared = {"version": OUTPUT_VERSION, "what": what, "years": years, "raw_audios": str(raw)}
    if what == "unlabelled":
        table = tables[0]
        return [ShardJob(lang, {**shared, "lang": lang, "v2": v2, "table": [str(table), *_stat(table)]},
                         unlabelled_shard,
                         (table, _rows_file(parts_folder(out), lang), raw, lang, years, v2, threads))
                for lang in langs]
    joined = out / JOINED_AUDIO
    return [ShardJob(lang, {**shared, "lang": lang, "joined": str(joined), "table": [str(table), *_stat(table)]},
                     asr_shard, (table, raw, joined, lang, years, threads, progress and nj <= 1))
            for lang, table in zip(langs, tables)]


def _check_not_empty(what: str, counts: dict[str, int], tallies: dict[str, dict], langs: list[str],
                     years: list[str]) -> None:
    empty = [split for split, n in counts.items() if not n]
    if empty:
        raise DataDirError(f"no {what} utterances for split(s) {', '.join(empty)} in languages {' '.join(langs)} "
                           f"and years {' '.join(years)}; choose more years (--years) or languages (--langs)")
    silent = [f"{lang} ({tally_line(tally)})" for lang, tally in tallies.items() if not sum(tally["kept"].values())]
    if silent:
        raise DataDirError(f"no {what} utterances left of language(s) {'; '.join(silent)}; choose other years "
                           f"(--years), drop the language from --langs, or check its manifest")


def _log_left_out(what: str, tables: list[Path], tallies: dict[str, dict]) -> None:
    if what == "unlabelled":
        not_plenary = sum(t["dropped"].get("non-plenary event (needs --v2)", 0) for t in tallies.values())
        if not_plenary:
            log.info("%s: left out %d segment(s) of non-plenary events (they need --v2)", tables[0], not_plenary)
        return
    for table, tally in zip(tables, tallies.values()):
        for reason, n in sorted(tally["dropped"].items()):
            log.info("%s: left out %d row(s) with %s", table, n, reason)


DONE = ".prepare_voxpopuli.done"   # under <out>: the data dirs' inputs and summary, written last


def _selection(root: Path, what: str, langs: list[str] | None, years: list[str] | None, v2: bool
               ) -> tuple[list[str], list[str], list[Path], dict]:
    """The checked languages and years, the manifests they need, and what the outputs depend on."""
    langs, years = check_selection(what, langs, years)
    if what == "unlabelled":
        tables = [find_table(root, UNLABELLED_TABLE, "unlabelled_data/unlabelled_v2.tsv.gz")]
    else:
        tables = [find_table(root, asr_table(lang), f"transcribed_data/{lang}/asr_{lang}.tsv.gz") for lang in langs]
    return langs, years, tables, _fingerprint(what, langs, years, v2, root / RAW_AUDIOS, tables)


def _up_to_date(out: Path, fingerprint: dict) -> dict | None:
    """The summary of data dirs written earlier from the same inputs (and still whole), or None."""
    done = out / DONE
    if not done.is_file():
        return None
    previous = json.loads(done.read_text(encoding="utf-8"))
    if previous.get("inputs") == fingerprint and _outputs_complete(out, previous.get("counts", {})):
        log.info("%s: up to date (%s)", out, done.name)
        return {"counts": previous["counts"], "languages": previous["languages"]}
    return None


# ---- the work every language's shard shares --------------------------------------------------
#
# Done once, before the shards: in the same call without --part, or by a call with --shared-only before
# a job array of --part calls (which refuse to start without it, rather than do it N times at once).
# Unlabelled: the split of the one table of every language by language. ASR: the session archives
# (audios/original_<year>.tar hold every language's sessions). The unlabelled audio archives are per
# language and year, so each part extracts its own languages' archives.

def _shared_work(root: Path, what: str, table: Path, work: Path, langs: list[str], years: list[str], nj: int,
                 progress: bool) -> None:
    if what == "asr":
        extract_audios(root, audio_tars("asr", langs, years), nj, progress)
    else:
        split_unlabelled(table, work, langs, progress)


def _shared_work_missing(root: Path, what: str, table: Path, work: Path, langs: list[str], years: list[str]
                         ) -> str | None:
    """What of the shared work is not done yet, or None."""
    if what == "unlabelled":
        return None if split_done(table, work, langs) else f"{table} is not split by language yet"
    raw = root / RAW_AUDIOS
    todo = [a for a in audio_tars("asr", langs, years) if (root / a).is_file() and not _extracted(raw, root / a)]
    return f"{' '.join(todo)} under {root} not extracted yet" if todo else None


def shared_only_command(root: Path, out: Path, what: str, langs: list[str], years: list[str], v2: bool) -> str:
    """The call that does the shared work of this selection, as a user would type it."""
    words = ["python", "-m", "mslam.bin.prepare_voxpopuli", "prepare", "--root", str(root), "--out", str(out),
             "--what", what, "--langs", ",".join(langs), "--years", ",".join(years), *(["--v2"] if v2 else []),
             "--shared-only"]
    return " ".join(map(shlex.quote, words))


def prepare_shared(root: str | os.PathLike, out: str | os.PathLike, what: str, langs: list[str] | None = None,
                   years: list[str] | None = None, v2: bool = False, nj: int = 1, progress: bool = True) -> str:
    """Only the work that the languages' shards share (see above), for a job array of `prepare(..., part=)`
    calls to follow. Returns a line saying what it did."""
    root, out = Path(root).resolve(), Path(out).resolve()
    langs, years, tables, fingerprint = _selection(root, what, langs, years, v2)
    if _up_to_date(out, fingerprint) is not None:
        return f"{out}: the data dirs are up to date; nothing to do"
    _shared_work(root, what, tables[0], parts_folder(out), langs, years, nj, progress)
    done = "the session archives extracted" if what == "asr" else f"{tables[0]} split by language"
    return f"{what}: {done}; the shards of {' '.join(langs)} can now run as a job array (--part J/N)"


def prepare(root: str | os.PathLike, out: str | os.PathLike, what: str, langs: list[str] | None = None,
            years: list[str] | None = None, v2: bool = False, nj: int = 1, progress: bool = True,
            part: Part | None = None) -> dict | PartDone:
    """Extract the selection's audio under <root> and write its data dirs under <out>. Returns the summary:
    {"counts": utterances per split, "languages": {lang: kept per split, dropped per reason, joined}}.
    A rerun with the same selection and manifests does nothing (and returns the same summary).

    Each language is a shard (run `nj` at a time, in processes), streamed into sorted files under
    <out>.parts/ and stamped when done; the data dirs are a merge of those files. Memory stays bounded
    whatever the number of rows, and a killed run redoes only the languages it had not finished.

    With `part` (J/N), only the J-th of N parts of the languages is prepared and stamped, and nothing is
    merged (returns a PartDone): a job of a job array. The work all shards share must be done first
    (prepare_shared): a part refuses to start without it, naming the command, so that N jobs started
    at once never do it together. The call without `part` afterwards redoes no stamped shard."""
    root, out = Path(root).resolve(), Path(out).resolve()
    langs, years, tables, fingerprint = _selection(root, what, langs, years, v2)
    work = parts_folder(out)
    summary = _up_to_date(out, fingerprint)
    jobs = _shard_jobs(what, tables, root / RAW_AUDIOS, out, langs, years, v2, nj, progress)
    if part is not None:
        jobs = part.take(jobs)
    mine = [job.name for job in jobs]
    if summary is not None:
        return summary if part is None else PartDone(part, mine, work, up_to_date=True)

    if part is None:
        _shared_work(root, what, tables[0], work, langs, years, nj, progress)
    else:
        missing = _shared_work_missing(root, what, tables[0], work, langs, years)
        if missing:
            raise DataDirError(f"--part {part}: {missing}; every language's shard needs it, so it is done once "
                               f"before the job array: run {shared_only_command(root, out, what, langs, years, v2)}")
    if what == "unlabelled":
        extract_audios(root, audio_tars(what, mine, years, v2), nj, progress)
    tallies = run_shards(jobs, work, nj, progress, desc=f"voxpopuli {what}")
    if part is not None:
        return PartDone(part, mine, work)
    return _merge(what, tables, out, work, langs, years, fingerprint, tallies, nj, progress)


def _merge(what: str, tables: list[Path], out: Path, work: Path, langs: list[str], years: list[str],
           fingerprint: dict, tallies: dict[str, dict], nj: int, progress: bool) -> dict:
    """The data dirs from every language's finished shard; the shards go once they are written."""
    _log_left_out(what, tables, tallies)
    splits = ["train"] if what == "unlabelled" else list(ASR_SPLITS)
    counts = {split: sum(t["kept"].get(split, 0) for t in tallies.values()) for split in splits}
    _check_not_empty(what, counts, tallies, langs, years)
    parts = [work / lang for lang in langs]
    if what == "asr":
        write_joins(parts, nj, progress)

    out.mkdir(parents=True, exist_ok=True)
    done = out / DONE
    done.unlink(missing_ok=True)   # the data dirs are about to change
    for split in splits:
        tmp, _ = merge_parts(parts, split, UNLABELLED_TABLES if what == "unlabelled" else ASR_TABLES, out / split)
        replace_dir(tmp, out / split)
        log.info("%s: %d utterances (%s)", out / split, counts[split], " ".join(langs))
    summary = {"counts": counts, "languages": tallies}
    atomic_write_text(done, json.dumps({"inputs": fingerprint, **summary}, indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return summary
