"""Resumable, checksummed downloads of a corpus's files from its URL base.

A file `<base>/<path>` (https, http, file:// or a plain local directory) is fetched into `<out>/<path>`:

- bytes go to `<out>/<path>.part`; a later attempt or run continues from the .part's size (an HTTP
  `Range: bytes=N-` request, a seek for local files). A server that answers 200 instead of 206 ignored the
  Range: the .part is started over.
- the complete .part is verified (its sha256 when the checksums file lists it, otherwise its size against
  Content-Length and, for tar, zip and gzip files, a readable-archive check: mslam.data.archives) and
  renamed to the final name, so a file at its final name is always complete.
- a file already at its final name is verified the same way (without a listed sha256: its size against
  the source's, from a HEAD request or the local file, and the archive check) and skipped when whole;
  a cut-short or damaged one is fetched again, the old copy replaced only once the new one verifies.
  An archive that passed its check gets a stamp `.<name>.verified` (size and time), so reruns do not
  read it again.
- transient failures (connection reset, timeout, HTTP 5xx, incomplete read) are retried with a short
  backoff, resuming each time; 4xx and missing local files fail at once with a DownloadError naming the URL.
"""
from __future__ import annotations

import hashlib
import http.client
import io
import logging
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterable
from urllib.parse import quote, urlsplit

from tqdm import tqdm

from mslam.data.archives import archive_problem, is_checked

log = logging.getLogger("mslam.data")

CHUNK = 1 << 20
SCHEMES = ("http", "https", "file")
# What to do about a file the source does not have: shown with every 4xx / missing-file error.
NOT_FOUND_HINT = ("check the path (the --langs and other selections of the recipe's `files` command), the URL "
                  "base, or whether the corpus moved: then point db.sh at a complete local copy")
# Network failures a later attempt may not meet again; HTTP 5xx and short reads are added by _open/_stream.
TRANSIENT = (ConnectionError, TimeoutError, http.client.HTTPException, urllib.error.URLError)


class DownloadError(RuntimeError):
    """A file that cannot be fetched or verified; the message names the file or URL and what to do."""


class _Transient(Exception):
    """A failure worth retrying (HTTP 5xx, a short read)."""


def read_checksums(path: str | os.PathLike) -> dict[str, str]:
    """Relative path -> lowercase sha256 hex, from a file in sha256sum format (`<hex>  <path>` per line;
    `<hex> *<path>` too). Blank lines and `#` comments are ignored."""
    checksums: dict[str, str] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DownloadError(f"{path}: cannot read the checksums file ({e})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = re.fullmatch(r"([0-9a-fA-F]{64}) [ *](.+)", line.rstrip("\r"))
        if not m:
            raise DownloadError(f"{path}:{n}: expected '<sha256 hex>  <relative path>' (sha256sum format), "
                                f"got {line!r}")
        rel, digest = _normalise(m.group(2)), m.group(1).lower()
        if checksums.get(rel, digest) != digest:
            raise DownloadError(f"{path}:{n}: {rel!r} is listed twice with different sha256 values")
        checksums[rel] = digest
    return checksums


def read_path_list(lines: Iterable[str]) -> list[str]:
    """The relative paths of a list (one a line; blank lines and `#` comments ignored)."""
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def source_url(base: str | os.PathLike) -> str:
    """`base` as a URL: http(s) and file:// URLs as they are, a local directory as a file:// URL."""
    base = os.fspath(base)
    scheme = urlsplit(base).scheme
    if not scheme:
        return Path(base).resolve().as_uri()
    if scheme not in SCHEMES:
        raise DownloadError(f"{base}: unsupported URL scheme {scheme!r}; expected one of {', '.join(SCHEMES)} "
                            "or a local directory")
    return base


def join_url(base_url: str | os.PathLike, rel: str) -> str:
    return source_url(base_url).rstrip("/") + "/" + quote(rel)


def download_file(url: str | os.PathLike, dest: str | os.PathLike, *, sha256: str | None = None, retries: int = 3,
                  progress: bool = True, backoff: float = 1.0, timeout: float = 60.0) -> bool:
    """Fetch `url` into `dest` (resuming `dest.part`); True if it fetched, False if `dest` was already there
    and whole."""
    url, dest = source_url(url), Path(dest)
    sha256 = sha256.lower() if sha256 else None
    if dest.is_dir():
        raise DownloadError(f"{dest}: is a directory; expected a file path under the URL base")
    part = dest.with_name(dest.name + ".part")
    if dest.exists():
        problem = _present_problem(url, dest, sha256, timeout)
        if problem is None:
            log.info("%s: already present%s", dest, ", sha256 verified" if sha256 else "")
            return False
        # Replaced only once a verified copy is fetched (os.replace below): nothing is lost on failure.
        log.warning("%s: present but %s; fetching it again", dest, problem)
        part.unlink(missing_ok=True)   # its bytes may belong to the damaged copy
    dest.parent.mkdir(parents=True, exist_ok=True)
    fetch = dict(retries=retries, progress=progress, backoff=backoff, timeout=timeout, desc=dest.name)
    spliced = _fetch(url, part, **fetch)
    problem = _fetched_problem(part, sha256)
    if problem and spliced:
        # The bytes kept from an earlier attempt may belong to another version of the file.
        log.warning("%s: %s after resuming a partial download; fetching it again from scratch", dest, problem)
        part.unlink()
        _fetch(url, part, **fetch)
        problem = _fetched_problem(part, sha256)
    if problem:
        part.unlink()
        raise DownloadError(f"{dest}: {problem} (from {url}); the downloaded copy was deleted. The source may "
                            "hold another version of the file or a damaged one: check the checksums file or "
                            "the URL base")
    os.replace(part, dest)
    _stamp_verified(dest, sha256)
    return True


def _fetched_problem(part: Path, sha256: str | None) -> str | None:
    """What is wrong with a complete .part: its sha256 when one is known, else the archive check."""
    if sha256:
        got = _sha256_of(part)
        return None if got == sha256 else f"sha256 mismatch: expected {sha256}, got {got}"
    return archive_problem(part, name=part.name.removesuffix(".part"))


def _present_problem(url: str, dest: Path, sha256: str | None, timeout: float) -> str | None:
    """What is wrong with a file already at its final name (None: whole, as far as can be told)."""
    if sha256:
        got = _sha256_of(dest)
        return None if got == sha256 else f"does not match its sha256 {sha256}"
    size, expected = dest.stat().st_size, _source_size(url, timeout)
    if expected is not None and size != expected:
        return f"its size {size} differs from the source's {expected} bytes"
    if _verified(dest):
        return None
    problem = archive_problem(dest)
    if problem is None:
        _stamp_verified(dest, sha256)
    return problem


def _stamp_path(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.verified")


def _stamp_verified(dest: Path, sha256: str | None) -> None:
    """Remember that an archive passed its check (with a sha256 there is nothing to remember)."""
    if sha256 is None and is_checked(dest):
        stat = dest.stat()
        _stamp_path(dest).write_text(f"{stat.st_size} {stat.st_mtime_ns}\n", encoding="utf-8")


def _verified(dest: Path) -> bool:
    stamp = _stamp_path(dest)
    stat = dest.stat()
    return stamp.is_file() and stamp.read_text(encoding="utf-8").split() == [str(stat.st_size), str(stat.st_mtime_ns)]


def _source_size(url: str, timeout: float) -> int | None:
    """The size of the source's file: the local file's, or Content-Length of a HEAD request (None when
    the source does not say, is gone or cannot be reached: the other checks still apply)."""
    if urlsplit(url).scheme == "file":
        path = Path(urllib.request.url2pathname(urlsplit(url).path))
        return path.stat().st_size if path.is_file() else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout) as response:
            length = response.headers.get("Content-Length")
    except (*TRANSIENT, OSError) as e:
        log.info("%s: no size from the source (%s); the copy here is checked without it", url, _describe(e))
        return None
    return int(length) if length and length.isdigit() else None


def download_all(base_url: str | os.PathLike, paths: Iterable[str], out_dir: str | os.PathLike, *,
                 checksums: dict[str, str] | None = None, retries: int = 3, progress: bool = True,
                 backoff: float = 1.0, timeout: float = 60.0) -> dict[str, int]:
    """Fetch each relative path from `<base_url>/<path>` into `<out_dir>/<path>`.
    Returns {"fetched": files fetched, "present": files already there, "bytes": size of the fetched files}."""
    base_url, out = source_url(base_url), Path(out_dir)
    checksums = checksums or {}
    rels = list(dict.fromkeys(_checked_relative(p) for p in paths))  # all checked before any is fetched
    unlisted = [rel for rel in rels if rel not in checksums]
    if checksums and unlisted:
        log.info("%d of %d files have no listed sha256 (e.g. %s); their size is checked instead",
                 len(unlisted), len(rels), unlisted[0])
    summary = {"fetched": 0, "present": 0, "bytes": 0}
    for rel in rels:
        dest = out / rel
        if download_file(join_url(base_url, rel), dest, sha256=checksums.get(rel), retries=retries,
                         progress=progress, backoff=backoff, timeout=timeout):
            summary["fetched"] += 1
            summary["bytes"] += dest.stat().st_size
        else:
            summary["present"] += 1
    return summary


def _fetch(url: str, part: Path, *, retries: int, progress: bool, backoff: float, timeout: float,
           desc: str) -> bool:
    """Complete `part` from `url`, resuming from its size; True if it holds bytes kept from before the last
    (re)start, i.e. it was spliced from more than one response."""
    for attempt in range(retries + 1):
        offset = part.stat().st_size if part.exists() else 0
        try:
            return _stream(url, part, offset, progress=progress, timeout=timeout, desc=desc) > 0
        except (_Transient, *TRANSIENT) as e:
            if attempt == retries:
                raise DownloadError(f"{url}: failed after {retries + 1} attempts, last: {_describe(e)}; the "
                                    f"partial file {part} is kept and a rerun continues it") from None
            delay = backoff * 2 ** attempt
            log.warning("%s: %s; retrying in %.1f s (%d of %d)", url, _describe(e), delay, attempt + 1, retries)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _stream(url: str, part: Path, offset: int, *, progress: bool, timeout: float, desc: str) -> int:
    """Append the source's bytes from `offset` to `part` (or rewrite it when the source starts over);
    returns the offset the source started at."""
    stream, start, total = _open(url, offset, timeout)
    with stream, open(part, "ab" if start else "wb") as out, \
            tqdm(total=total, initial=start, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                 disable=not progress, dynamic_ncols=True) as bar:
        while chunk := stream.read(CHUNK):
            out.write(chunk)
            bar.update(len(chunk))
        out.flush()
        os.fsync(out.fileno())
        size = out.tell()
    if total is not None and size != total:
        raise _Transient(f"incomplete read: {size} of {total} bytes")
    return start


def _open(url: str, offset: int, timeout: float) -> tuple[BinaryIO, int, int | None]:
    """The source's bytes from `offset` (or from 0 where it cannot resume): (stream, start, total size)."""
    if urlsplit(url).scheme == "file":
        path = Path(urllib.request.url2pathname(urlsplit(url).path))
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            raise DownloadError(f"{url}: not found ({path} does not exist); {NOT_FOUND_HINT}") from None
        except OSError as e:
            raise DownloadError(f"{url}: cannot read {path} ({e.strerror})") from None
        total = os.fstat(f.fileno()).st_size
        start = offset if offset <= total else 0  # a .part longer than the source belongs to another version
        f.seek(start)
        return f, start, total
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        content_range = e.headers.get("Content-Range", "")
        e.close()
        if e.code == 416 and offset:
            # The .part may be whole already (a run stopped between its last byte and the rename).
            if content_range == f"bytes */{offset}":
                return io.BytesIO(), offset, offset
            return _open(url, 0, timeout)
        if e.code >= 500 or e.code in (408, 429):
            raise _Transient(f"HTTP {e.code} {e.reason}") from None
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}; {NOT_FOUND_HINT}") from None
    length = response.headers.get("Content-Length")
    if response.status != 206:  # 200: the server ignored the Range, the body is the whole file
        return response, 0, int(length) if length else None
    m = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
    if not m or int(m.group(1)) != offset:
        response.close()
        return _open(url, 0, timeout)
    total = int(m.group(2)) if m.group(2) != "*" else offset + int(length) if length else None
    return response, offset, total


def _checked_relative(path: str) -> str:
    rel = _normalise(path)
    parts = PurePosixPath(rel).parts
    if not parts or parts[0] == "/" or ".." in parts or "\\" in rel:
        raise DownloadError(f"{path!r}: not a relative path under the URL base (expected e.g. 'audios/de_2019.tar')")
    return rel


def _normalise(path: str) -> str:
    return path.strip().removeprefix("./")


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _describe(e: BaseException) -> str:
    return str(e) if isinstance(e, _Transient) else f"{type(e).__name__}: {e}"
