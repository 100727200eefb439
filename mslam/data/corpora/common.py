"""What the corpus preparers share: reading and checking `--langs`, extracting an archive once, putting a
finished data dir in place whole, running jobs a few at a time, and how their commands report errors.

Each corpus module keeps its own layout, messages and hints; only the mechanics live here.
"""
from __future__ import annotations

import os
import shutil
import sys
import tarfile
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Collection, Iterable, Iterator, Mapping, TypeVar

from mslam.data.kaldi import DataDir, DataDirError, Utterance, write_data_dir, write_table

T = TypeVar("T")
R = TypeVar("R")


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
    return all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


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
