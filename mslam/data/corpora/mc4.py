"""mC4 (allenai/c4, folder multilingual/): the download list and the character-level text shards of
pre-training (the paper: mC4 in 101 languages, 512-character sequences).

Download layout at the pinned revision of 2021-06-14 (URL base: mslam.data.fixtures.URL_BASES["mc4"]):

    multilingual/c4-<lang>.tfrecord-<i:05d>-of-<N:05d>.json.gz              train shard i of N
    multilingual/c4-<lang>-validation.tfrecord-<i:05d>-of-<M:05d>.json.gz   validation shard i of M

N and M of each of the 108 language configs are in mc4_shards.tsv beside this file. A shard is gzip'd
JSON lines {"text", "timestamp", "url"}; a document's text has one paragraph per line. The later
"mC4 3.1.0" layout (c4-<lang>.00000-00001-....json.gz) is read as well: shards are found by globbing.

Output (what mslam.data.manifest.text_manifest and mslam.bin.build_char_vocab read):

    <out>/train/<lang>.txt   one sentence per line, from the train shards
    <out>/dev/<lang>.txt     the same from the validation shards (absent if none were downloaded)
    <out>/stats.json         per language: the settings it was made with, and per split the shards read,
                             documents read and kept (a document is kept when one of its sentences is),
                             sentences and characters kept, pieces cut, sentences and characters dropped
                             by reason, and the minimum length applied

Cleaning, per document, in this order:
 1. the text is split into lines (paragraphs), each NFKC-normalised with whitespace runs collapsed
    (mslam.data.tokenizer.normalize_text);
 2. a line is split into sentences after sentence-final punctuation: . ! ? and the full stops and question
    marks of Arabic, Urdu, Devanagari, Armenian, Ethiopic and Myanmar when a space follows, the ideographic
    full stop always; closing quotes and brackets stay with their sentence; no split after a number or a
    single letter ("1. Januar", "z. B."). Other abbreviations ("Dr.") are split: kept simple on purpose.
    Scripts without such punctuation (Thai, Lao, Khmer) keep one line per paragraph;
 3. a sentence longer than max_chars is cut into pieces of at most max_chars, at the last space before the
    limit (a hard cut where there is none, as in Chinese or Thai);
 4. pieces shorter than the language's minimum are dropped ("short"). The minimum is min_chars for
    alphabets written with spaces, scaled down for scripts that carry more per character
    (mslam.data.scripts.MIN_CHARS_SCALE): with min_chars 20, Chinese and Japanese keep sentences of
    5 characters, Korean of 8, Thai, Lao, Khmer and Myanmar of 12;
 5. exact repeats within a language are dropped ("duplicate"); train is read first, so a dev sentence that
    also occurs in train is dropped from dev and dev never repeats training text.
Memory does not grow with the corpus, and each shard is read once: without --max-sentences-per-lang
a shard's candidate sentences and their 8-byte hashes go to a work folder (<out>/.work/<lang>/, see
scan_shard), then the repeats are found on disk, one bucket of the hash space at a time, and each
split's candidates are copied into place less the repeats. Shards are read in parallel (--nj), and a
run killed and started again does not read again the shards it had read. As a job array, each job
(--part J/N) reads every N-th shard of all the languages into the work folder and stops; the call
without --part then reads none again and de-duplicates and writes every language (see read_part).
With a cap, one pass over the shards remembers at most the kept sentences' hashes (no --part).
A language whose train shards leave no sentence is an error (its text would be silently missing from
pre-training); one left without dev sentences is reported in the statistics and by the command.
"""
from __future__ import annotations

import array
import ctypes
import gzip
import hashlib
import json
import logging
import os
import re
import shutil
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, Iterable, Iterator

import numpy as np

from mslam.data.corpora.common import DOWNLOAD_STAGE, Part, PartDone, check_codes
from mslam.data.kaldi import DataDirError, atomic_write_text
from mslam.data.scripts import min_chars_scale
from mslam.data.tokenizer import normalize_text

log = logging.getLogger("mslam.data.corpora.mc4")

SHARD_TABLE = Path(__file__).with_name("mc4_shards.tsv")
SHARD_TABLE_COLUMNS = ["lang", "train_shards", "validation_shards"]
SHARD_DIR = "multilingual"
SPLITS = {"train": "", "dev": "-validation"}   # output split -> suffix of the mC4 split in file names
STATS = "stats.json"
RULES_VERSION = 2   # bump when the cleaning rules change: languages made with older rules are redone
REDOWNLOAD = f"delete it and rerun {DOWNLOAD_STAGE}, or point MC4 in db.sh at a complete copy"

# Step 2 of the cleaning rules. After NFKC, fullwidth ！？ are ASCII and … is "...".
_SPACED_ENDS = ".!?\u061f\u06d4\u0589\u0964\u0965\u1362\u1367\u104b"   # ؟ ۔ ։ । ॥ ። ፧ ။
_CLOSERS = "\"'\u201d\u2019\u00bb)\\]\u300d\u300f"                       # " ' ” ’ » ) ] 」 』
_SENTENCE_END = re.compile(rf"[{_SPACED_ENDS}]+[{_CLOSERS}]*(?=\s)|\u3002+[{_CLOSERS}]*")


@dataclass(frozen=True)
class CleaningRules:
    min_chars: int = 20                   # for alphabets written with spaces; see min_chars_for
    max_chars: int = 512                  # the paper's text sequence length
    max_sentences: int | None = None      # per language and split; None: all

    def __post_init__(self) -> None:
        if not 1 <= self.min_chars <= self.max_chars:
            raise ValueError(f"need 1 <= min_chars <= max_chars, got {self.min_chars} and {self.max_chars}")
        if self.max_sentences is not None and self.max_sentences < 1:
            raise ValueError(f"max_sentences must be >= 1, got {self.max_sentences}")

    def min_chars_for(self, lang: str) -> int:
        """The shortest sentence kept in a language: min_chars scaled for its main script."""
        return max(1, round(self.min_chars * min_chars_scale(lang)))


# ---- languages and the download list -------------------------------------------------------------

@lru_cache(maxsize=None)
def read_shard_table(path: str | os.PathLike = SHARD_TABLE) -> dict[str, tuple[int, int]]:
    """Language config -> (train shards, validation shards), from a TSV with a header ('#' lines are comments)."""
    table: dict[str, tuple[int, int]] = {}
    header = None
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.rstrip("\n").split("\t")
            if header is None:
                header = cols
                if header != SHARD_TABLE_COLUMNS:
                    raise DataDirError(f"{path}:{lineno}: header {cols}, expected {SHARD_TABLE_COLUMNS}")
                continue
            if len(cols) != 3 or not cols[1].isdigit() or not cols[2].isdigit() or cols[0] in table:
                raise DataDirError(f"{path}:{lineno}: expected a new language and two shard counts "
                                   f"separated by tabs, got {line.rstrip()!r}")
            table[cols[0]] = (int(cols[1]), int(cols[2]))
    return table


def paper_languages() -> list[str]:
    """The 101 natural languages of mC4: every config but `und` and the romanized `-Latn` variants.

    ASSUMPTION: these are the paper's "101 languages" of mC4 (the mT5 language list).
    """
    return [lang for lang in read_shard_table() if lang != "und" and not lang.endswith("-Latn")]


def check_langs(langs: Iterable[str]) -> list[str]:
    """The languages in the order given (repeats dropped); an unknown one is an error listing the known."""
    table = read_shard_table()
    return check_codes(langs, table, "mC4 language(s)", f"the {len(table)} mC4 configs are: {' '.join(table)} "
                       "(codes are mC4's own: iw for Hebrew, fil, no, ...)")


def shard_name(lang: str, split: str, index: int) -> str:
    """Path of a shard under the URL base (split: train or dev, dev being mC4's validation split)."""
    total = read_shard_table()[lang][0 if split == "train" else 1]
    return f"{SHARD_DIR}/c4-{lang}{SPLITS[split]}.tfrecord-{index:05d}-of-{total:05d}.json.gz"


def download_list(langs: Iterable[str], train_shards: int = 1, validation_shards: int = 1) -> list[str]:
    """The first train_shards train and validation_shards validation shards of each language (fewer where a
    language has fewer), as paths under the URL base."""
    if train_shards < 0 or validation_shards < 0:
        raise ValueError(f"shard counts must be >= 0, got {train_shards} and {validation_shards}")
    table = read_shard_table()
    paths = []
    for lang in check_langs(langs):
        n_train, n_valid = table[lang]
        paths += [shard_name(lang, "train", i) for i in range(min(train_shards, n_train))]
        paths += [shard_name(lang, "dev", i) for i in range(min(validation_shards, n_valid))]
    return paths


# ---- cleaning ------------------------------------------------------------------------------------

def paragraphs(text: str) -> Iterator[str]:
    """The normalised non-empty lines of a document."""
    for line in text.splitlines():
        line = normalize_text(line)
        if line:
            yield line


def split_sentences(line: str) -> list[str]:
    sentences = []
    start = 0
    for end in _SENTENCE_END.finditer(line):
        last_word = line[start:end.start()].rsplit(" ", 1)[-1]
        if end.group().startswith(".") and (len(last_word) <= 1 or last_word.isdigit()):
            continue   # "1. Januar", "z. B.": an ordinal or an initial, not the end of a sentence
        sentence = line[start:end.end()].strip()
        if sentence:
            sentences.append(sentence)
        start = end.end()
    rest = line[start:].strip()
    return sentences + [rest] if rest else sentences


def cut_long(sentence: str, max_chars: int) -> list[str]:
    """Pieces of at most max_chars characters, cut at the last space before the limit where there is one."""
    pieces = []
    while len(sentence) > max_chars:
        cut = sentence.rfind(" ", 0, max_chars + 1)
        if cut <= 0:
            cut = max_chars
        pieces.append(sentence[:cut].rstrip())
        sentence = sentence[cut:].lstrip()
    return pieces + [sentence] if sentence else pieces


def _document_text(line: bytes, shard: Path, lineno: int) -> str:
    try:
        doc = json.loads(line)
    except ValueError as e:   # bad JSON or bad UTF-8
        raise DataDirError(f"{shard}:{lineno}: not a JSON line ({e}); the shard is damaged: {REDOWNLOAD}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("text"), str):
        raise DataDirError(f"{shard}:{lineno}: expected a JSON object with a 'text' string (mC4 lines have text, "
                           f"timestamp, url); the shard is damaged: {REDOWNLOAD}")
    return doc["text"]


def read_documents(shard: Path, bar=None) -> Iterator[str]:
    """The texts of a shard, streamed; `bar` (tqdm) advances by the compressed bytes read."""
    lineno = 0
    done = 0
    try:
        with open(shard, "rb") as raw, gzip.GzipFile(fileobj=raw) as lines:
            for lineno, line in enumerate(lines, 1):
                if line.strip():
                    yield _document_text(line, shard, lineno)
                if bar is not None and lineno % 1000 == 0:
                    bar.update(raw.tell() - done)
                    done = raw.tell()
            if bar is not None:
                bar.update(raw.tell() - done)
    except (OSError, EOFError, zlib.error) as e:
        raise DataDirError(f"{shard}: unreadable gzip after line {lineno} ({e}); {REDOWNLOAD}") from None


def _sentence_hash(sentence: str) -> int:
    # 8 bytes: a false "duplicate" needs ~4e9 sentences in one language to become likely.
    return int.from_bytes(hashlib.blake2b(sentence.encode("utf-8"), digest_size=8).digest(), "little")


def _split_stats(shards: int, min_chars: int) -> dict:
    return {"shards": shards, "min_chars": min_chars, "documents": 0, "documents_kept": 0, "sentences": 0,
            "characters": 0, "cut": 0, "dropped": {"short": 0, "duplicate": 0},
            "dropped_characters": {"short": 0, "duplicate": 0}}


def _drop(stats: dict, reason: str, piece: str) -> None:
    stats["dropped"][reason] += 1
    stats["dropped_characters"][reason] += len(piece)


def candidates(text: str, rules: CleaningRules, min_chars: int, stats: dict) -> Iterator[str]:
    """The pieces of a document long enough to keep (steps 1-4), before de-duplication; `stats` counts
    the cut sentences and the short pieces dropped."""
    for line in paragraphs(text):
        for sentence in split_sentences(line):
            pieces = cut_long(sentence, rules.max_chars)
            stats["cut"] += len(pieces) > 1
            for piece in pieces:
                if len(piece) < min_chars:
                    _drop(stats, "short", piece)
                else:
                    yield piece


def clean_split(shards: list[Path], out: IO[str], rules: CleaningRules, seen: set[int], bar=None,
                min_chars: int | None = None) -> dict:
    """Write the sentences of some shards to `out`, one per line; `seen` holds the hashes already written
    for the language (updated); sentences shorter than `min_chars` (default: rules.min_chars) are
    dropped. Returns the split's statistics. This is the path of --max-sentences-per-lang, where `seen`
    holds at most the kept sentences."""
    min_chars = rules.min_chars if min_chars is None else min_chars
    stats = _split_stats(len(shards), min_chars)
    for shard in shards:
        for text in read_documents(shard, bar):
            stats["documents"] += 1
            kept_before = stats["sentences"]
            for piece in candidates(text, rules, min_chars, stats):
                key = _sentence_hash(piece)
                if key in seen:
                    _drop(stats, "duplicate", piece)
                    continue
                seen.add(key)
                out.write(piece + "\n")
                stats["sentences"] += 1
                stats["characters"] += len(piece)
                if rules.max_sentences is not None and stats["sentences"] >= rules.max_sentences:
                    stats["documents_kept"] += 1
                    return stats
            stats["documents_kept"] += stats["sentences"] > kept_before
    return stats


def summary_line(split: str, stats: dict) -> str:
    """`train: kept 3 of 4 documents, 5 sentences (258 chars); dropped 2 short < 20 (31 chars), 1 duplicate
    (24 chars)` (on one line)."""
    dropped, chars = stats["dropped"], stats["dropped_characters"]
    return (f"{split}: kept {stats['documents_kept']} of {stats['documents']} documents, {stats['sentences']} "
            f"sentences ({stats['characters']} chars); dropped {dropped['short']} short < {stats['min_chars']} "
            f"({chars['short']} chars), {dropped['duplicate']} duplicate ({chars['duplicate']} chars)")


# ---- one pass per shard, then the repeats of the whole language ---------------------------------
#
# A shard is read once, into a part of its language's work folder <out>/.work/<lang>/: its candidate
# sentences as they would be written (<part>.txt), their 8-byte hashes (<part>.hashes) and the number
# of candidates of each document (<part>.docs). <part>.json, written last, holds the shard's counts
# before de-duplication and what they were made from (the shard's name and size, the rules), and marks
# the part done: a run does not read that shard again while those are the same. Parts are independent
# and a part writes only its own files, so shards are read in parallel (--nj), or by the jobs of a job
# array (--part J/N) at once, with no file shared between them. Then the language's hashes, as
# (hash, position) pairs, are split on disk into buckets by range of hash; in a bucket a stable sort
# by hash puts each repeat after its first occurrence, so the repeats' positions are the duplicates
# (<part>.dups). Last, each split's parts are copied in order into <split>/<lang>.txt less their
# duplicates. Memory holds a batch of hashes, one bucket, and one part's duplicates and documents.

WORK = ".work"
PART_FILES = ("txt", "hashes", "docs")
HASH_BATCH = 1 << 19          # hashes buffered while reading a shard, or bucketed at once (4 MB)
BUCKET_PAIRS = 1 << 20        # (hash, position) pairs sorted at once: 16 MB, about 50 MB with the sort
MAX_BUCKETS = 256             # bucket files open at once; a bigger bucket is sorted in slices


def _file(part: Path, kind: str) -> Path:
    return part.with_name(f"{part.name}.{kind}")


def _flush(buffer: array.array, f: IO[bytes]) -> None:
    buffer.tofile(f)
    del buffer[:]


def _part_settings(shard: Path, rules: CleaningRules, min_chars: int) -> dict:
    """What a part depends on: a part recorded with other settings is read again."""
    return {"rules_version": RULES_VERSION, "min_chars": min_chars, "max_chars": rules.max_chars,
            "shard": [shard.name, shard.stat().st_size]}


def is_read(part: Path, shard: Path, rules: CleaningRules, min_chars: int) -> bool:
    """Whether `part` holds `shard` read with these rules (its marker is there and agrees)."""
    try:
        marker = json.loads(_file(part, "json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False   # not read yet, or a marker of an older layout: read again
    return isinstance(marker, dict) and marker.get("settings") == _part_settings(shard, rules, min_chars)


def _part_counts(part: Path) -> dict:
    return json.loads(_file(part, "json").read_text(encoding="utf-8"))["counts"]


def scan_shard(shard: Path, rules: CleaningRules, min_chars: int, part: Path, bar=None) -> dict:
    """Steps 1-4 of the cleaning over one shard, into `part` (see above). Returns the shard's counts
    before de-duplication: sentences are the candidates, documents_kept the documents with one."""
    settings = _part_settings(shard, rules, min_chars)
    _file(part, "json").unlink(missing_ok=True)   # the part's files are about to change
    stats = _split_stats(1, min_chars)
    partial = {kind: _file(part, f"{kind}.partial") for kind in PART_FILES}
    try:
        with open(partial["txt"], "w", encoding="utf-8", newline="\n") as text, \
                open(partial["hashes"], "wb") as hashes, open(partial["docs"], "wb") as docs:
            hash_buffer, doc_buffer = array.array("Q"), array.array("I")
            for document in read_documents(shard, bar):
                count = 0
                for piece in candidates(document, rules, min_chars, stats):
                    text.write(piece + "\n")
                    hash_buffer.append(_sentence_hash(piece))
                    stats["characters"] += len(piece)
                    count += 1
                doc_buffer.append(count)
                stats["documents"] += 1
                stats["documents_kept"] += count > 0
                stats["sentences"] += count
                if len(hash_buffer) >= HASH_BATCH:
                    _flush(hash_buffer, hashes), _flush(doc_buffer, docs)
            _flush(hash_buffer, hashes), _flush(doc_buffer, docs)
        for kind in PART_FILES:
            os.replace(partial[kind], _file(part, kind))
        atomic_write_text(_file(part, "json"), json.dumps({"settings": settings, "counts": stats}) + "\n")
        return stats
    finally:
        for path in partial.values():
            path.unlink(missing_ok=True)


M_MMAP_THRESHOLD = -3   # glibc's mallopt parameter


def _give_freed_arrays_back() -> None:
    """Arrays of 1 MB or more get mappings of their own, returned to the system when freed. Otherwise
    glibc raises its mmap threshold when the first big array is freed and serves the next ones from a
    heap that keeps what they free: RSS then rose bucket after bucket (64 to 128 MB over 36 buckets;
    with the threshold fixed it stays at 65). Elsewhere than glibc this does nothing."""
    with suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, 1 << 20)


def _bucket_of(hashes: np.ndarray, buckets: int) -> np.ndarray:
    """Buckets are ranges of the hash space: the top 32 bits scaled to 0..buckets-1."""
    return ((hashes >> np.uint64(32)) * np.uint64(buckets)) >> np.uint64(32)


def _partition(parts: list[Path], buckets: int, folder: Path) -> list[Path]:
    """(hash, position) pairs of the parts' candidates (positions count over the parts in order) in
    bucket files, each in increasing position."""
    paths = [folder / f"bucket-{b:05d}.pairs" for b in range(buckets)]
    position = 0
    with ExitStack() as stack:
        files = [stack.enter_context(open(path, "wb")) for path in paths]
        for part in parts:
            with open(_file(part, "hashes"), "rb") as f:
                while len(hashes := np.fromfile(f, dtype=np.uint64, count=HASH_BATCH)):
                    pairs = np.column_stack((hashes, np.arange(position, position + len(hashes), dtype=np.uint64)))
                    position += len(hashes)
                    bucket = _bucket_of(hashes, buckets)
                    order = np.argsort(bucket, kind="stable")
                    bounds = np.searchsorted(bucket[order], np.arange(buckets + 1, dtype=np.uint64))
                    pairs = pairs[order]
                    for b in np.flatnonzero(bounds[1:] > bounds[:-1]):
                        pairs[bounds[b]:bounds[b + 1]].tofile(files[b])
    return paths


def _bucket_slices(path: Path) -> Iterator[np.ndarray]:
    """The pairs of a bucket file, at most about BUCKET_PAIRS at a time: slices by the hashes' low bits."""
    slices = max(1, -(-path.stat().st_size // (16 * BUCKET_PAIRS)))
    if slices == 1:
        yield np.fromfile(path, dtype=np.uint64).reshape(-1, 2)
        return
    for k in range(slices):
        chosen = []
        with open(path, "rb") as f:
            while len(pairs := np.fromfile(f, dtype=np.uint64, count=2 * HASH_BATCH).reshape(-1, 2)):
                low = pairs[:, 0] & np.uint64(0xFFFFFFFF)
                chosen.append(pairs[(low * np.uint64(slices)) >> np.uint64(32) == k])
        yield np.concatenate(chosen)


def _repeat_positions(pairs: np.ndarray) -> np.ndarray:
    """Positions whose hash occurs at an earlier position (pairs in increasing position)."""
    order = np.argsort(pairs[:, 0], kind="stable")   # stable: a hash's first occurrence comes first
    hashes = pairs[order, 0]
    return pairs[order[1:][hashes[1:] == hashes[:-1]], 1]


def _append_to_parts(positions: np.ndarray, starts: np.ndarray, parts: list[Path]) -> None:
    owner = np.searchsorted(starts, positions, side="right") - 1
    order = np.argsort(owner, kind="stable")
    positions, owner = positions[order], owner[order]
    bounds = np.searchsorted(owner, np.arange(len(parts) + 1))
    for i in np.flatnonzero(bounds[1:] > bounds[:-1]):
        with open(_file(parts[i], "dups"), "ab") as f:
            (positions[bounds[i]:bounds[i + 1]] - starts[i]).tofile(f)


def find_duplicates(parts: list[Path], folder: Path) -> None:
    """Write to each part's .dups the indices (unsorted) of its candidates that repeat an earlier
    candidate of the parts, taken in order."""
    _give_freed_arrays_back()
    sizes = [_file(part, "hashes").stat().st_size // 8 for part in parts]
    starts = np.cumsum([0] + sizes).astype(np.uint64)
    for part in parts:
        _file(part, "dups").write_bytes(b"")   # also what a killed run left
    buckets = int(min(MAX_BUCKETS, max(1, -(-int(starts[-1]) // BUCKET_PAIRS))))
    paths = _partition(parts, buckets, folder)
    try:
        for path in paths:
            for pairs in _bucket_slices(path):
                _append_to_parts(_repeat_positions(pairs), starts, parts)
            path.unlink()
    finally:
        for path in paths:
            path.unlink(missing_ok=True)


def _documents_emptied(part: Path, duplicates: np.ndarray) -> int:
    """Documents that had candidates, all of them duplicates."""
    per_document = np.fromfile(_file(part, "docs"), dtype=np.uint32)
    owner = np.searchsorted(np.cumsum(per_document, dtype=np.uint64), duplicates, side="right")
    lost = np.bincount(owner, minlength=len(per_document))
    return int(np.count_nonzero((per_document > 0) & (lost == per_document)))


def _copy_without_duplicates(part: Path, out: IO[bytes], stats: dict) -> None:
    """Append a part's candidates less its duplicates to `out`; `stats`, which holds the part's counts,
    moves the duplicates from kept to dropped."""
    duplicates = np.sort(np.fromfile(_file(part, "dups"), dtype=np.uint64))
    with open(_file(part, "txt"), "rb") as f:
        line = 0
        for duplicate in duplicates:
            for _ in range(int(duplicate) - line):
                out.write(f.readline())
            piece = f.readline()[:-1].decode("utf-8")
            line = int(duplicate) + 1
            stats["sentences"] -= 1
            stats["characters"] -= len(piece)
            _drop(stats, "duplicate", piece)
        shutil.copyfileobj(f, out, 1 << 20)
    stats["documents_kept"] -= _documents_emptied(part, duplicates)


def _add_counts(total: dict, counts: dict) -> None:
    for key, value in counts.items():
        if isinstance(value, dict):
            _add_counts(total[key], value)
        elif key not in ("shards", "min_chars"):
            total[key] += value


def write_split(parts: list[Path], target: Path, min_chars: int) -> dict:
    """<split>/<lang>.txt from the split's parts, their duplicates found; returns the split's statistics."""
    stats = _split_stats(len(parts), min_chars)
    with atomic_file(target, binary=True) as out:
        for part in parts:
            counts = _part_counts(part)
            _copy_without_duplicates(part, out, counts)
            _add_counts(stats, counts)
    return stats


# ---- preparing a corpus --------------------------------------------------------------------------

def shard_folder(root: Path) -> Path:
    """Where the shards are: <root>/multilingual, or root itself if it is that folder."""
    return root / SHARD_DIR if (root / SHARD_DIR).is_dir() else root


def find_shards(root: Path, lang: str, split: str) -> list[Path]:
    # "c4-de.*" never matches "c4-de-validation.*" nor another language's "c4-de-Latn.*".
    return sorted(shard_folder(root).glob(f"c4-{lang}{SPLITS[split]}.*.json.gz"))


@contextmanager
def atomic_file(path: Path, binary: bool = False) -> Iterator[IO]:
    """A file written under a temporary name and renamed into place only when complete (text: UTF-8)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") if binary else open(tmp, "w", encoding="utf-8", newline="\n") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _parts(work: Path, inputs: dict[str, list[Path]]) -> dict[str, list[Path]]:
    return {split: [work / f"{split}-{i:05d}" for i in range(len(inputs[split]))] for split in SPLITS}


def work_folder(out: Path, lang: str) -> Path:
    return out / WORK / lang


@dataclass(frozen=True)
class ShardTask:
    """A shard to read into its part of the language's work folder."""
    lang: str
    shard: Path
    part: Path

    @property
    def name(self) -> str:
        return f"{self.lang}/{self.part.name}"

    def is_read(self, rules: CleaningRules) -> bool:
        return is_read(self.part, self.shard, rules, rules.min_chars_for(self.lang))


def shard_tasks(out: Path, lang: str, inputs: dict[str, list[Path]]) -> list[ShardTask]:
    """The language's shards, train first, each with its part: the order the splits are written in."""
    parts = _parts(work_folder(out, lang), inputs)
    return [ShardTask(lang, shard, part) for split in SPLITS for shard, part in zip(inputs[split], parts[split])]


def _names(tasks: list[ShardTask], most: int = 20) -> str:
    names = " ".join(task.name for task in tasks[:most])
    return names + (f" and {len(tasks) - most} more" if len(tasks) > most else "")


def unread(tasks: list[ShardTask], rules: CleaningRules, desc: str = "") -> list[ShardTask]:
    """The tasks whose shard is not read yet; with `desc`, logged with how many were read earlier (so
    that the log of the call after a job array shows it read none again)."""
    todo = [task for task in tasks if not task.is_read(rules)]
    if desc and tasks:
        log.info("%s: %d shard(s) read earlier, %d to read%s", desc, len(tasks) - len(todo), len(todo),
                 f" ({_names(todo)})" if todo else "")
    return todo


def read_shards(tasks: list[ShardTask], rules: CleaningRules, nj: int = 1, progress: bool = False
                ) -> Iterator[ShardTask]:
    """Read the shards (nj > 1: in nj worker processes), yielding each task once its part is done."""
    for task in tasks:
        task.part.parent.mkdir(parents=True, exist_ok=True)   # safe when parts of a job array race here
    if nj <= 1 or len(tasks) <= 1:
        for task in tasks:
            with _bar(task.shard.stat().st_size, f"mc4 {task.name}", progress) as bar:
                scan_shard(task.shard, rules, rules.min_chars_for(task.lang), task.part, bar)
            yield task
        return
    calls = {task: (scan_shard, (task.shard, rules, rules.min_chars_for(task.lang), task.part)) for task in tasks}
    with ProcessPoolExecutor(max_workers=nj) as pool, _bar(len(calls), "mc4 shards", progress, "shard") as bar:
        for task, _ in _in_parallel(pool, calls, bar):
            yield task


def _split_targets(out: Path, lang: str, inputs: dict[str, list[Path]]) -> Iterator[tuple[str, Path]]:
    """(split, <out>/<split>/<lang>.txt) of each split that has shards, train first (dev is de-duplicated
    against it); the file of a split without shards, left by a run with other inputs, is removed."""
    for split in SPLITS:
        target = out / split / f"{lang}.txt"
        if inputs[split]:
            yield split, target
        else:
            target.unlink(missing_ok=True)


def finish_language(out: Path, lang: str, inputs: dict[str, list[Path]], rules: CleaningRules) -> dict:
    """Once every shard is read: the duplicates, <out>/<split>/<lang>.txt of each split that has shards
    (train first: dev is de-duplicated against it), the work folder removed. Returns the statistics."""
    work = work_folder(out, lang)
    parts = _parts(work, inputs)
    find_duplicates(parts["train"] + parts["dev"], work)
    stats = {}
    for split, target in _split_targets(out, lang, inputs):
        stats[split] = write_split(parts[split], target, rules.min_chars_for(lang))
        stats[split]["bytes"] = target.stat().st_size
    _remove_if_no_text(out, lang, stats)
    _remove_work(work)
    return stats


def _remove_work(work: Path) -> None:
    for marker in work.glob("*.json"):   # first: a removal cut short leaves no part that looks read
        marker.unlink()
    shutil.rmtree(work)
    with suppress(OSError):
        work.parent.rmdir()   # when no other language is under way


def _remove_if_no_text(out: Path, lang: str, stats: dict) -> None:
    if not stats["train"]["sentences"]:   # no text: the stage fails (see prepare); nothing to mistake for text
        for split in stats:
            (out / split / f"{lang}.txt").unlink(missing_ok=True)


def _bar(total: int, desc: str, progress: bool, unit: str = "B"):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "B", disable=not progress,
                dynamic_ncols=True, mininterval=1.0)


def prepare_language(out: Path, lang: str, inputs: dict[str, list[Path]], rules: CleaningRules,
                     progress: bool = False) -> dict:
    """Write <out>/<split>/<lang>.txt of each split from its shards, in this process; a split without
    shards has no file. Shards read by an earlier run with the same settings are not read again.
    Returns the statistics per split."""
    if rules.max_sentences is not None:
        return _prepare_capped(out, lang, inputs, rules, progress)
    for _ in read_shards(unread(shard_tasks(out, lang, inputs), rules), rules, progress=progress):
        pass
    return finish_language(out, lang, inputs, rules)


def _prepare_capped(out: Path, lang: str, inputs: dict[str, list[Path]], rules: CleaningRules,
                    progress: bool) -> dict:
    """With --max-sentences-per-lang: one pass over the splits remembering the kept sentences' hashes
    (at most the cap), train first so that dev is de-duplicated against it."""
    seen: set[int] = set()
    stats = {}
    for split, target in _split_targets(out, lang, inputs):
        size = sum(p.stat().st_size for p in inputs[split])
        with _bar(size, f"mc4 {lang} {split}", progress) as bar, atomic_file(target) as f:
            stats[split] = clean_split(inputs[split], f, rules, seen, bar, rules.min_chars_for(lang))
        stats[split]["bytes"] = target.stat().st_size
    _remove_if_no_text(out, lang, stats)
    return stats


def _settings(inputs: dict[str, list[Path]], rules: CleaningRules) -> dict:
    """What a language's output depends on: a change in any of it redoes the language."""
    return {"rules_version": RULES_VERSION, **asdict(rules),
            "inputs": {split: [[p.name, p.stat().st_size] for p in paths] for split, paths in inputs.items()}}


def _up_to_date(out: Path, lang: str, entry: dict | None, settings: dict) -> bool:
    if not entry or entry.get("settings") != settings:
        return False
    for split in SPLITS:
        target = out / split / f"{lang}.txt"
        if split in entry and not (target.is_file() and target.stat().st_size == entry[split].get("bytes")):
            return False
    return True


def read_stats(out: Path) -> dict:
    try:
        return json.loads((out / STATS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}   # none yet, or damaged: every language is redone


CAPPED_PART = ("--part reads shards for the de-duplication on disk; --max-sentences-per-lang reads each language "
               "in one pass that stops at the cap, so there are no shards to spread: drop --part (--nj N then "
               "prepares N languages at once), or drop the cap")


def prepare(root: str | os.PathLike, out: str | os.PathLike, langs: Iterable[str] | None = None,
            rules: CleaningRules = CleaningRules(), nj: int = 1, progress: bool = False,
            part: Part | None = None) -> tuple[dict, list[str]] | PartDone:
    """Text shards of the languages (default: every language with train shards under root).

    Languages already made from the same shards with the same rules are skipped, and so are the shards
    that a killed run had read. Returns the statistics of the requested languages and the list of
    languages (re)made in this run.

    With `part` (J/N), only the J-th of N parts of the shards is read into the work folder, and
    nothing is de-duplicated or written (returns a PartDone): a job of a job array. Parts write only
    their own shards' files, so they may run at once; the call without `part` afterwards finds those
    shards read and makes the languages.
    """
    if part is not None and rules.max_sentences is not None:
        raise ValueError(CAPPED_PART)
    root, out = Path(root), Path(out)
    folder = shard_folder(root)
    if langs is None:
        langs = [lang for lang in read_shard_table() if find_shards(root, lang, "train")]
        if not langs:
            raise DataDirError(f"{folder}: no mC4 shards (c4-<lang>.tfrecord-*.json.gz); run the recipe's "
                               f"download stage, or point MC4 in db.sh at a copy of allenai/c4")
    langs = check_langs(langs)
    plans = {}
    for lang in langs:
        inputs = {split: find_shards(root, lang, split) for split in SPLITS}
        if not inputs["train"]:
            raise DataDirError(f"{folder}: no train shards of '{lang}' (c4-{lang}.tfrecord-*.json.gz); run the "
                               f"recipe's download stage for it, or point MC4 in db.sh at a complete copy")
        plans[lang] = (inputs, _settings(inputs, rules))
    stats = read_stats(out)
    todo = [lang for lang in langs if not _up_to_date(out, lang, stats.get(lang), plans[lang][1])]

    def record(lang: str, split_stats: dict) -> None:
        stats[lang] = {"settings": plans[lang][1], **split_stats}
        atomic_write_text(out / STATS, json.dumps(dict(sorted(stats.items())), indent=1, ensure_ascii=False) + "\n")

    if part is not None:
        return read_part(out, part, langs, todo, plans, rules, nj, progress)
    if rules.max_sentences is None:
        _prepare_shards(out, todo, plans, rules, nj, progress, record)
    elif nj <= 1:
        for lang in todo:
            record(lang, prepare_language(out, lang, plans[lang][0], rules, progress))
    else:
        _prepare_languages_in_parallel(out, todo, plans, rules, nj, progress, record)
    result = {lang: stats[lang] for lang in langs}
    _check_no_empty_language(result, todo)
    return result, todo


class EmptyLanguageError(DataDirError):
    """Languages whose train shards left no text. It carries what prepare would have returned (statistics
    of every language, languages made), so that a command can print its summary before failing."""

    def __init__(self, message: str, stats: dict, made: list[str]):
        super().__init__(message)
        self.stats, self.made = stats, made


def _check_no_empty_language(stats: dict, made: list[str]) -> None:
    empty = [f"{lang} ({summary_line('train', entry['train'])})" for lang, entry in stats.items()
             if not entry["train"]["sentences"]]
    if empty:
        raise EmptyLanguageError(
            f"no text left after cleaning in {len(empty)} language(s): {'; '.join(empty)}. Pre-training would "
            f"silently lack them: check their shards, lower --min-chars (it is scaled per script, see "
            f"mslam/data/scripts.py MIN_CHARS_SCALE), or leave them out of --langs", stats, made)


def _in_parallel(pool: ProcessPoolExecutor, calls: dict, bar) -> Iterator[tuple]:
    """(key, result) of each call (key -> (function, args)) as it returns; after an error the calls not
    yet started are cancelled, those running are waited for, and the first error is raised at the end."""
    error = None
    futures = {pool.submit(function, *args): key for key, (function, args) in calls.items()}
    for future in as_completed(futures):
        if future.cancelled():
            continue
        bar.update()
        try:
            result = future.result()
        except DataDirError as e:
            error = error or e
            for other in futures:
                other.cancel()
            continue
        yield futures[future], result
    if error is not None:
        raise error


def _prepare_shards(out: Path, todo: list[str], plans: dict, rules: CleaningRules, nj: int, progress: bool,
                    record) -> None:
    """The unread shards of the languages, read in their order (nj > 1: by nj worker processes); a
    language is finished as soon as its last shard is read, so that languages finished before an error
    are recorded."""
    tasks = [task for lang in todo for task in shard_tasks(out, lang, plans[lang][0])]
    to_read = unread(tasks, rules, "mc4")
    left = {lang: sum(task.lang == lang for task in to_read) for lang in todo}

    def finish(lang: str) -> None:
        record(lang, finish_language(out, lang, plans[lang][0], rules))

    for lang in todo:
        if not left[lang]:
            finish(lang)
    for task in read_shards(to_read, rules, nj, progress):
        left[task.lang] -= 1
        if not left[task.lang]:
            finish(task.lang)


def read_part(out: Path, part: Part, langs: list[str], todo: list[str], plans: dict, rules: CleaningRules,
              nj: int = 1, progress: bool = False) -> PartDone:
    """Read the part's share of the shards of every language (in the language order, train first):
    the i-th shard is part J's when i % N == J - 1. The share is taken before the languages already
    made are left out, so that it does not depend on what is done. Nothing else is written."""
    share = part.take([task for lang in langs for task in shard_tasks(out, lang, plans[lang][0])])
    mine = [task for task in share if task.lang in todo]
    if share and not mine:
        return PartDone(part, [], out / WORK, up_to_date=True)
    for _ in read_shards(unread(mine, rules, f"mc4 part {part}"), rules, nj, progress):
        pass
    return PartDone(part, [task.name for task in mine], out / WORK)


def _prepare_languages_in_parallel(out: Path, todo: list[str], plans: dict, rules: CleaningRules, nj: int,
                                   progress: bool, record) -> None:
    """With a cap, one language per worker process; languages finished before an error are recorded."""
    calls = {lang: (prepare_language, (out, lang, plans[lang][0], rules)) for lang in todo}
    with ProcessPoolExecutor(max_workers=nj) as pool, _bar(len(todo), "mc4 languages", progress, "lang") as bar:
        for lang, split_stats in _in_parallel(pool, calls, bar):
            record(lang, split_stats)
