"""CoVoST 2 X->En speech translation on Common Voice v4 audio: what to download and the Kaldi data dirs.

Two download bases (relative paths as `download_files` prints them):

    Common Voice  cv-corpus-4-2019-12-10/<lang>.tar.gz   clips/*.mp3 (48 kHz), validated.tsv, ... at the tar root
    CoVoST 2      covost_v2.<lang>_en.tsv.tar.gz          covost_v2.<lang>_en.tsv

`prepare` extracts each Common Voice tarball once into `<cv-root>/<lang>/` (the layout ESPnet's
covost2 recipe reads: `<lang>/validated.tsv`, `<lang>/clips/`) and each CoVoST TSV into
`<covost-root>/`; copies already extracted there are used as they are, without the archives. It
then joins validated.tsv (path, sentence, client_id) with the CoVoST TSV (path, translation, split)
on `path`, as CoVoST's get_covost_splits.py does: an inner join (CoVoST rows whose clip is not in
validated.tsv are dropped, and counted), train = train | train_covost, dev, test (other split
values are skipped, and counted). It writes `<out>/{train,dev,test}` with all requested languages:

    wav.scp   <utt> <absolute path of the mp3>       text      <utt> <source sentence>
    text.en   <utt> <English translation>            utt2spk   <utt> <client_id>
    utt2lang  <utt> <Common Voice code, e.g. zh-CN>  spk2utt

Utterance ids are `<lang>_<clip name without .mp3>`. A finished run leaves a stamp; a rerun on the
same inputs does nothing. Each language is a shard (`--nj` at once, in processes) streamed into sorted
files under <out>.parts/ and stamped when done, so a killed run redoes only the unfinished languages;
the data dirs are a merge of those files. What is held is one language's validated.tsv (the join looks
its clips up in any order), as (sentence, client_id, line) per clip. Every archive belongs to one
language, so a job array of `--part J/N` calls (each extracting and joining its own languages) needs
no work done before it; the call without --part then merges.
"""
from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import tarfile
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Iterator

from tqdm import tqdm

from mslam.data.corpora.common import (DOWNLOAD_STAGE, DataDirPart, Part, PartDone, ShardJob, archive_errors,
                                       check_codes, extraction_folder, map_in_threads, merge_parts, parts_folder,
                                       replace_dir, run_shards)
from mslam.data.kaldi import DataDirError, atomic_write_bytes, atomic_write_text

log = logging.getLogger("mslam.data.covost2")

# The 21 X->En source languages of CoVoST 2 (XX_EN_LANGUAGES["2"]), as Common Voice codes.
LANGUAGES = ("fr", "de", "es", "ca", "it", "ru", "zh-CN", "pt", "fa", "et", "mn", "nl", "tr", "ar", "sv-SE",
             "lv", "sl", "ta", "ja", "id", "cy")
# The paper's resource groups (the XLS-R grouping), in the same codes as utt2lang.
GROUPS = {
    "high": ["fr", "de", "es", "ca"],
    "mid": ["fa", "it", "ru", "pt", "zh-CN"],
    "low": ["tr", "ar", "et", "mn", "nl", "sv-SE", "lv", "sl", "ta", "ja", "id", "cy"],
}
TARGET = "en"
CV_RELEASE = "cv-corpus-4-2019-12-10"
SOURCES = ("commonvoice", "covost2")
SPLITS = ("train", "dev", "test")
# CoVoST 2's split column -> our split; rows with any other value are skipped (get_covost_splits.py).
SPLIT_OF = {"train": "train", "train_covost": "train", "dev": "dev", "test": "test"}
CV_COLUMNS = ("path", "sentence", "client_id")           # used from validated.tsv
COVOST_COLUMNS = ("path", "translation", "split")        # used from covost_v2.<lang>_en.tsv
STAMP = ".prepare_covost2.json"
STAMP_FORMAT = 1   # bump when the output changes for the same inputs

DOWNLOAD_HINT = f"run {DOWNLOAD_STAGE}, or point COMMONVOICE / COVOST2 in db.sh at a complete copy"
DAMAGED_HINT = f"if the download is incomplete, delete it and run {DOWNLOAD_STAGE} again"


def check_langs(langs: Iterable[str] | None) -> list[str]:
    """The requested languages (all 21 when None), each checked against the X->En sources."""
    if langs is None:
        return list(LANGUAGES)
    what, valid_ones = "CoVoST 2 source language(s)", f"valid (Common Voice codes): {' '.join(LANGUAGES)}"
    langs = check_codes(langs, LANGUAGES, what, valid_ones)
    if not langs:
        raise DataDirError(f"unknown {what} (none given); {valid_ones}")
    return langs


def download_files(source: str, langs: Iterable[str] | None = None) -> list[str]:
    """Paths under the download base of `source` (commonvoice or covost2) that the languages need."""
    langs = check_langs(langs)
    if source == "commonvoice":
        return [f"{CV_RELEASE}/{lang}.tar.gz" for lang in langs]
    if source == "covost2":
        return [f"{covost_name(lang)}.tar.gz" for lang in langs]
    raise DataDirError(f"unknown download source '{source}'; expected one of: {' '.join(SOURCES)}")


def groups_json() -> str:
    """The resource groups as `python -m mslam.bin.score --groups` reads them."""
    return json.dumps(GROUPS)


def covost_name(lang: str) -> str:
    return f"covost_v2.{lang}_{TARGET}.tsv"


# ---- extraction ------------------------------------------------------------------------------

def extract_common_voice(cv_root: Path, lang: str) -> Path:
    """`<cv_root>/<lang>/` with validated.tsv and clips/, extracted from the tarball unless already there.

    The tarball goes into a temporary folder renamed into place when complete, so a killed
    extraction is redone from scratch and a present folder is always whole.
    """
    target = cv_root / lang
    if target.exists():
        if not (target / "validated.tsv").is_file():
            raise DataDirError(f"{target}: exists but holds no validated.tsv; remove it to extract the tarball "
                               f"again, or {DOWNLOAD_HINT}")
        return target
    tarball = cv_root / CV_RELEASE / f"{lang}.tar.gz"
    if not tarball.is_file():
        raise DataDirError(f"{tarball}: not found, and no extracted copy {target}/validated.tsv either; "
                           f"{DOWNLOAD_HINT}")
    log.info("extracting %s (%.1f MB) into %s", tarball, tarball.stat().st_size / 1e6, target)
    with extraction_folder(tarball, cv_root / f".{lang}.extracting", DAMAGED_HINT) as tmp, \
            tarfile.open(tarball) as tar:
        tar.extractall(tmp, filter="data")
    os.rename(_extracted_root(tmp, tarball), target)
    shutil.rmtree(tmp, ignore_errors=True)
    return target


def _extracted_root(tmp: Path, tarball: Path) -> Path:
    # ASSUMPTION: a v4 language tarball holds clips/ and the TSVs at its root (fairseq and ESPnet read
    # them so); one folder level above them is accepted too, in case a copy was re-packed that way.
    if (tmp / "validated.tsv").is_file():
        return tmp
    found = sorted(tmp.glob("*/validated.tsv"))
    if len(found) == 1:
        return found[0].parent
    raise DataDirError(f"{tarball}: no validated.tsv at the archive root (next to clips/); expected a Common "
                       f"Voice v4 language tarball; {DOWNLOAD_HINT}")


def extract_covost_tsv(covost_root: Path, lang: str) -> Path:
    """`<covost_root>/covost_v2.<lang>_en.tsv`, extracted (atomically) from its tarball unless already there."""
    name = covost_name(lang)
    tsv = covost_root / name
    if tsv.is_file():
        return tsv
    tarball = covost_root / f"{name}.tar.gz"
    if not tarball.is_file():
        raise DataDirError(f"{tarball}: not found, and no extracted {tsv} either; {DOWNLOAD_HINT}")
    with archive_errors(tarball, DAMAGED_HINT), tarfile.open(tarball) as tar:
        member = next((m for m in tar if m.isfile() and PurePosixPath(m.name).name == name), None)
        if member is None:
            raise DataDirError(f"{tarball}: holds no {name}; expected the CoVoST 2 translation TSV; {DOWNLOAD_HINT}")
        atomic_write_bytes(tsv, tar.extractfile(member).read())
    return tsv


# ---- the join --------------------------------------------------------------------------------

def read_tsv(path: Path, needed: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, {column: value}) for each row of a TAB-separated table with a header, read as
    CoVoST's tools read it (pandas with QUOTE_NONE and backslash escapes). Blank lines are skipped."""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        try:
            header = next(reader, [])
            missing = [c for c in needed if c not in header]
            if missing:
                raise DataDirError(f"{path}:1: header {' '.join(header) or '(empty)'} lacks column(s) "
                                   f"{' '.join(missing)}; {DOWNLOAD_HINT}")
            for row in reader:
                if not row:
                    continue
                if len(row) != len(header):
                    raise DataDirError(f"{path}:{reader.line_num}: {len(row)} TAB-separated field(s), expected "
                                       f"{len(header)} ({' '.join(header)}); fix the line or {DOWNLOAD_HINT}")
                yield reader.line_num, dict(zip(header, row))
        except UnicodeDecodeError:
            raise DataDirError(f"{path}:{reader.line_num + 1}: not valid UTF-8; {DOWNLOAD_HINT}") from None
        except csv.Error as e:
            raise DataDirError(f"{path}:{reader.line_num}: {e}; fix the line or {DOWNLOAD_HINT}") from None


def _one_line(text: str) -> str:
    # Kaldi tables hold one line per utterance: an escaped tab or newline becomes a space.
    return " ".join(text.split())


def _token(row: dict[str, str], column: str, where: str) -> str:
    value = row[column]
    if not value or any(c.isspace() for c in value):
        raise DataDirError(f"{where}: {column} {value!r} is empty or contains whitespace; "
                           f"expected a Common Voice {column}; fix the line or {DOWNLOAD_HINT}")
    return value


def read_validated(cv_dir: Path) -> dict[str, tuple[str, str, int]]:
    """validated.tsv as {clip path: (sentence, client_id, line)}; a clip listed twice is an error (the join
    would double it). One language's table is held: the join looks clips up in it in any order."""
    path = cv_dir / "validated.tsv"
    clips: dict[str, tuple[str, str, int]] = {}
    for line, row in read_tsv(path, CV_COLUMNS):
        where = f"{path}:{line}"
        clip = _token(row, "path", where)
        client = _token(row, "client_id", where)
        if clip in clips:
            raise DataDirError(f"{where}: clip '{clip}' is listed again (first on line {clips[clip][2]}); "
                               f"remove the duplicate or {DOWNLOAD_HINT}")
        clips[clip] = (row["sentence"], client, line)
    return clips


TABLES = ("wav.scp", "text", f"text.{TARGET}", "utt2spk", "utt2lang")   # per utterance, in row order


def _duplicate_clip(tsv: Path) -> Callable[[str, str, int, int], str]:
    def message(utt: str, clip: str, first: int, repeat: int) -> str:
        return (f"{tsv}:{repeat}: clip '{clip}' is listed again (first on line {first}); "
                f"remove the duplicate or {DOWNLOAD_HINT}")
    return message


def covost_shard(folder: Path, cv_dir: Path, tsv: Path, lang: str, progress: bool = False) -> dict:
    """One language's join, streamed into a DataDirPart under `folder` (mslam.data.corpora.common);
    returns the utterances per split and the counts of what the join dropped or skipped."""
    validated = read_validated(cv_dir)
    part = DataDirPart(folder, SPLITS, TABLES)
    not_validated = 0
    other_splits: Counter[str] = Counter()
    clips_dir = cv_dir.absolute() / "clips"
    rows = tqdm(read_tsv(tsv, COVOST_COLUMNS), desc=f"covost2 {lang}", unit=" rows", disable=not progress,
                dynamic_ncols=True)
    for line, row in rows:
        where = f"{tsv}:{line}"
        clip = _token(row, "path", where)
        utt = f"{lang}_{PurePosixPath(clip).stem}"
        split = SPLIT_OF.get(row["split"])
        source = validated.get(clip)
        if split is None:
            other_splits[row["split"]] += 1
        elif source is None:   # an inner join on path, as get_covost_splits.py does
            not_validated += 1
        if split is None or source is None:
            part.check_id(utt, line, clip)   # listed twice is an error, joined or not
            continue
        audio = clips_dir / clip
        if not audio.is_file():
            raise DataDirError(f"{where}: clip '{clip}' has no audio file {audio}; remove {cv_dir} to extract "
                               f"the tarball again, or {DOWNLOAD_HINT}")
        part.add(split, utt, line, clip, (str(audio), _one_line(source[0]), _one_line(row["translation"]),
                                          source[1], lang))
    utterances = part.finish(_duplicate_clip(tsv))
    return {"utterances": utterances, "not_in_validated": not_validated,
            "other_splits": dict(sorted(other_splits.items()))}


# ---- the whole preparation -------------------------------------------------------------------

def _inputs(tables: Iterable[Path]) -> dict[str, list[int]]:
    """What the output depends on: each table's absolute path, size and modification time."""
    return {str(p.absolute()): [p.stat().st_size, p.stat().st_mtime_ns] for p in tables}


def extract_all(cv_root: Path, covost_root: Path, langs: list[str], nj: int = 1,
                progress: bool = True) -> dict[str, tuple[Path, Path]]:
    """{lang: (Common Voice dir, CoVoST TSV)}, extracting up to `nj` archives at a time."""
    def extract(lang: str) -> tuple[Path, Path]:
        return extract_common_voice(cv_root, lang), extract_covost_tsv(covost_root, lang)

    with tqdm(total=len(langs), desc="extract", unit=" lang", disable=not progress or len(langs) < 2,
              dynamic_ncols=True) as bar:
        return dict(zip(langs, map_in_threads(extract, langs, nj, bar)))


def _shard_jobs(sources: dict[str, tuple[Path, Path]], progress: bool) -> list[ShardJob]:
    return [ShardJob(lang, {"format": STAMP_FORMAT, "lang": lang, "clips": str(cv_dir.absolute() / "clips"),
                            "inputs": _inputs((cv_dir / "validated.tsv", tsv))},
                     covost_shard, (cv_dir, tsv, lang, progress))
            for lang, (cv_dir, tsv) in sources.items()]


def _stamped_summary(out: Path, langs: list[str], inputs: dict) -> dict | None:
    """The summary of data dirs written earlier for these languages and inputs, or None."""
    stamp_path = out / STAMP
    if not (stamp_path.is_file() and all((out / s).is_dir() for s in SPLITS)):
        return None
    stamp = json.loads(stamp_path.read_text(encoding="utf-8"))
    if stamp.get("format") == STAMP_FORMAT and stamp.get("langs") == langs and stamp.get("inputs") == inputs:
        log.info("%s is up to date (%s); nothing to do", out, STAMP)
        return stamp["summary"]
    return None


def _already_extracted(cv_root: Path, covost_root: Path, langs: list[str]) -> dict[str, tuple[Path, Path]] | None:
    """What extract_all would return, when every language is extracted already; else None."""
    sources = {lang: (cv_root / lang, covost_root / covost_name(lang)) for lang in langs}
    whole = all((cv_dir / "validated.tsv").is_file() and tsv.is_file() for cv_dir, tsv in sources.values())
    return sources if whole else None


def _table_inputs(sources: dict[str, tuple[Path, Path]]) -> dict[str, list[int]]:
    return _inputs(p for cv_dir, tsv in sources.values() for p in (cv_dir / "validated.tsv", tsv))


def prepare(cv_root: str | os.PathLike, covost_root: str | os.PathLike, out: str | os.PathLike,
            langs: Iterable[str] | None = None, nj: int = 1, progress: bool = True,
            part: Part | None = None) -> dict | PartDone:
    """Write `<out>/{train,dev,test}` for the languages; returns the counts (also kept in the stamp).

    Each language is a shard, joined `nj` at a time (in processes) into sorted files under
    <out>.parts/ and stamped when done; the data dirs are a merge of those files. A killed run
    redoes only the languages it had not finished.

    With `part` (J/N), only the J-th of N parts of the languages is extracted, joined and stamped, and
    nothing is merged (returns a PartDone): a job of a job array. Every archive belongs to one language,
    so the parts share no work and may start together; the call without `part` afterwards finds their
    shards done and merges."""
    langs = check_langs(langs)
    cv_root, covost_root, out = Path(cv_root), Path(covost_root), Path(out)
    mine = langs if part is None else part.take(langs)
    everything = _already_extracted(cv_root, covost_root, langs) if part is not None else None
    if everything is not None and _stamped_summary(out, langs, _table_inputs(everything)) is not None:
        return PartDone(part, mine, parts_folder(out), up_to_date=True)
    sources = extract_all(cv_root, covost_root, mine, nj, progress)
    work = parts_folder(out)
    if part is not None:
        run_shards(_shard_jobs(sources, progress and nj <= 1), work, nj, progress, desc="covost2")
        return PartDone(part, mine, work)
    inputs = _table_inputs(sources)
    summary = _stamped_summary(out, langs, inputs)
    if summary is not None:
        return {**summary, "up_to_date": True}

    per_lang = run_shards(_shard_jobs(sources, progress and nj <= 1), work, nj, progress, desc="covost2")
    for lang, counts in per_lang.items():
        log.info("%s: train %d, dev %d, test %d; dropped %d row(s) whose clip is not in validated.tsv; "
                 "skipped split values %s", lang, *counts["utterances"].values(), counts["not_in_validated"],
                 counts["other_splits"] or "none")
    utterances = {split: sum(c["utterances"][split] for c in per_lang.values()) for split in SPLITS}
    empty = [split for split, n in utterances.items() if not n]
    if empty:
        raise DataDirError(f"the CoVoST 2 TSVs of {' '.join(langs)} select no {' or '.join(empty)} utterance; "
                           f"check them or {DOWNLOAD_HINT}")
    out.mkdir(parents=True, exist_ok=True)
    stamp_path = out / STAMP
    stamp_path.unlink(missing_ok=True)   # the dirs are about to change: no stamp until all are written
    for split in SPLITS:
        tmp, _ = merge_parts([work / lang for lang in langs], split, TABLES, out / split)
        replace_dir(tmp, out / split)
    summary = {"langs": langs, "utterances": utterances, "per_lang": per_lang}
    stamp = {"format": STAMP_FORMAT, "langs": langs, "inputs": inputs, "summary": summary}
    atomic_write_text(stamp_path, json.dumps(stamp, indent=1, ensure_ascii=False) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return {**summary, "up_to_date": False}
