"""Whether a downloaded archive is whole, for corpora that publish no checksums.

    tar       every member's data lies inside the file, and the end-of-archive block follows the last
              member (headers only: members are passed over by seeking, so a 50 GB tar costs seconds).
              A tar cut between two members reads without an error and silently lacks the rest.
    zip       the central directory (at the end of the file) reads, and every member lies inside the file.
    gz, tgz   decompressed to the end: a cut-short stream has no end-of-stream marker and length check
              (the cost of one full read; `.tar.gz` is checked this way too).

Other files have no structure to check (their size is checked against the server's by the downloader).
"""
from __future__ import annotations

import gzip
import os
import tarfile
import zipfile
import zlib
from pathlib import Path

BLOCK = 512
_READ = 1 << 20


def is_checked(path: str | os.PathLike) -> bool:
    """Whether archive_problem has a check for this kind of file."""
    return _kind(Path(path).name) is not None


def archive_problem(path: str | os.PathLike, name: str | None = None) -> str | None:
    """What is wrong with an archive (None: it is whole, or not a kind that can be checked). Its kind
    comes from `name` (default: the file's own name; a download's .part is judged by its final name)."""
    path = Path(path)
    kind = _kind(name or path.name)
    if kind is None:
        return None
    try:
        return {"tar": _tar_problem, "zip": _zip_problem, "gzip": _gzip_problem}[kind](path)
    except (tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, zlib.error) as e:
        return f"not a readable {kind} archive ({e})"


def _kind(name: str) -> str | None:
    if name.endswith(".tar"):
        return "tar"
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".gz", ".tgz")):
        return "gzip"
    return None


def _tar_problem(path: Path) -> str | None:
    size = path.stat().st_size
    with tarfile.open(path, "r:") as tar:
        for member in tar:
            end = member.offset_data + (member.size if member.isreg() else 0)
            if end > size:
                return f"member {member.name} ends at byte {end}, past the end of the file ({size} bytes): cut short"
        end_of_members = tar.offset
    with open(path, "rb") as f:
        f.seek(end_of_members)
        marker = f.read(BLOCK)
    if marker != bytes(BLOCK):
        return (f"no end-of-archive block after the last member (byte {end_of_members} of {size}): cut short, "
                "later members are missing")
    return None


def _zip_problem(path: Path) -> str | None:
    size = path.stat().st_size
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if info.header_offset + info.compress_size > size:
                return f"member {info.filename} lies past the end of the file ({size} bytes): cut short"
    return None


def _gzip_problem(path: Path) -> str | None:
    with gzip.open(path, "rb") as f:
        while f.read(_READ):
            pass
    return None
