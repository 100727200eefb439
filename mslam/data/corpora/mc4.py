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
Shards are streamed, and memory does not grow with the corpus: without --max-sentences-per-lang a first
pass writes every candidate sentence's 8-byte hash to a temporary file and finds, a slice of the hash
space at a time, the hashes that occur more than once; the cleaning pass then remembers only those
(9 bytes each), since any other sentence cannot be a repeat. This reads the shards twice. With a cap,
the cleaning pass alone remembers at most the kept sentences' hashes.
A language whose train shards leave no sentence is an error (its text would be silently missing from
pre-training); one left without dev sentences is reported in the statistics and by the command.
"""
from __future__ import annotations

import array
import gzip
import hashlib
import json
import os
import re
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, Iterable, Iterator

import numpy as np

from mslam.data.corpora.common import DOWNLOAD_STAGE, check_codes
from mslam.data.kaldi import DataDirError, atomic_write_text
from mslam.data.scripts import min_chars_scale
from mslam.data.tokenizer import normalize_text

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


def clean_split(shards: list[Path], out: IO[str], rules: CleaningRules, seen, bar=None,
                min_chars: int | None = None) -> dict:
    """Write the sentences of some shards to `out`, one per line; `seen` holds the hashes already written
    for the language (updated; a set, or a RepeatedHashes); sentences shorter than `min_chars` (default:
    rules.min_chars) are dropped. Returns the split's statistics."""
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


class RepeatedHashes:
    """The `seen` set of de-duplication when the hashes occurring more than once are known: only those
    can be repeats, so only they are remembered (sorted, with a flag each: 9 bytes a hash)."""

    def __init__(self, repeated: np.ndarray):
        self.repeated, self.written = repeated, np.zeros(len(repeated), dtype=bool)

    def _slot(self, key: int) -> int:
        if not len(self.repeated):
            return -1
        i = int(np.searchsorted(self.repeated, np.uint64(key)))
        return i if i < len(self.repeated) and int(self.repeated[i]) == key else -1

    def __contains__(self, key: int) -> bool:
        i = self._slot(key)
        return i >= 0 and bool(self.written[i])

    def add(self, key: int) -> None:
        i = self._slot(key)
        if i >= 0:
            self.written[i] = True


HASH_BATCH = 1 << 20          # hashes buffered before they go to the temporary file (8 MB)
SLICE_BYTES = 64 << 20        # hashes counted at once when looking for repeats


def find_repeats(shards: list[Path], rules: CleaningRules, min_chars: int, tmp: Path, bar=None) -> np.ndarray:
    """The sorted hashes of the candidate sentences (in `shards`, in order) that occur more than once.
    Memory: a batch of hashes while reading, then one slice of the hash space (about SLICE_BYTES) at a
    time; the hashes themselves go to `tmp` (8 bytes a sentence on disk)."""
    n = 0
    buffer = array.array("Q")
    scratch = _split_stats(0, min_chars)   # the cleaning pass counts for real
    try:
        with open(tmp, "wb") as f:
            for shard in shards:
                for text in read_documents(shard, bar):
                    for piece in candidates(text, rules, min_chars, scratch):
                        buffer.append(_sentence_hash(piece))
                    if len(buffer) >= HASH_BATCH:
                        n += len(buffer)
                        buffer.tofile(f)
                        buffer = array.array("Q")
            n += len(buffer)
            buffer.tofile(f)
        if n == 0:
            return np.zeros(0, dtype=np.uint64)
        # Read in chunks, not mapped: mapped pages would count in the RSS as the file grows.
        slices = max(1, -(-n * 8 * 3 // SLICE_BYTES))   # np.unique sorts a copy: about 3x a slice
        repeats = [np.zeros(0, dtype=np.uint64)]
        for k in range(slices):
            part = []
            with open(tmp, "rb") as f:
                while len(chunk := np.fromfile(f, dtype=np.uint64, count=HASH_BATCH)):
                    part.append(chunk[chunk % np.uint64(slices) == k])
            values, counts = np.unique(np.concatenate(part), return_counts=True)
            repeats.append(values[counts > 1])
        return np.sort(np.concatenate(repeats))
    finally:
        tmp.unlink(missing_ok=True)


def summary_line(split: str, stats: dict) -> str:
    """`train: kept 3 of 4 documents, 5 sentences (258 chars); dropped 2 short < 20 (31 chars), 1 duplicate
    (24 chars)` (on one line)."""
    dropped, chars = stats["dropped"], stats["dropped_characters"]
    return (f"{split}: kept {stats['documents_kept']} of {stats['documents']} documents, {stats['sentences']} "
            f"sentences ({stats['characters']} chars); dropped {dropped['short']} short < {stats['min_chars']} "
            f"({chars['short']} chars), {dropped['duplicate']} duplicate ({chars['duplicate']} chars)")


# ---- preparing a corpus --------------------------------------------------------------------------

def shard_folder(root: Path) -> Path:
    """Where the shards are: <root>/multilingual, or root itself if it is that folder."""
    return root / SHARD_DIR if (root / SHARD_DIR).is_dir() else root


def find_shards(root: Path, lang: str, split: str) -> list[Path]:
    # "c4-de.*" never matches "c4-de-validation.*" nor another language's "c4-de-Latn.*".
    return sorted(shard_folder(root).glob(f"c4-{lang}{SPLITS[split]}.*.json.gz"))


@contextmanager
def atomic_text_file(path: Path) -> Iterator[IO[str]]:
    """A text file written under a temporary name and renamed into place only when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def prepare_language(out: Path, lang: str, inputs: dict[str, list[Path]], rules: CleaningRules,
                     progress: bool = False) -> dict:
    """Write <out>/<split>/<lang>.txt of each split from its shards (train first: dev is deduplicated
    against it); a split without shards has no file. Returns the statistics per split."""
    from tqdm import tqdm
    seen: set[int] | RepeatedHashes = set()   # with a cap: at most the kept sentences' hashes
    if rules.max_sentences is None:
        shards = inputs["train"] + inputs["dev"]   # train first, as the cleaning pass reads them
        with tqdm(total=sum(p.stat().st_size for p in shards), desc=f"mc4 {lang} repeats", unit="B",
                  unit_scale=True, disable=not progress, dynamic_ncols=True, mininterval=1.0) as bar:
            out.mkdir(parents=True, exist_ok=True)
            seen = RepeatedHashes(find_repeats(shards, rules, rules.min_chars_for(lang), out / f".{lang}.hashes.tmp",
                                               bar))
    stats = {}
    for split in SPLITS:
        target = out / split / f"{lang}.txt"
        if not inputs[split]:
            target.unlink(missing_ok=True)   # left by a run with other inputs
            continue
        size = sum(p.stat().st_size for p in inputs[split])
        with tqdm(total=size, desc=f"mc4 {lang} {split}", unit="B", unit_scale=True, disable=not progress,
                  dynamic_ncols=True, mininterval=1.0) as bar, atomic_text_file(target) as f:
            stats[split] = clean_split(inputs[split], f, rules, seen, bar, rules.min_chars_for(lang))
        stats[split]["bytes"] = target.stat().st_size
    if not stats["train"]["sentences"]:   # no text: the stage fails (see prepare); nothing to mistake for text
        for split in stats:
            (out / split / f"{lang}.txt").unlink(missing_ok=True)
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


def prepare(root: str | os.PathLike, out: str | os.PathLike, langs: Iterable[str] | None = None,
            rules: CleaningRules = CleaningRules(), nj: int = 1, progress: bool = False) -> tuple[dict, list[str]]:
    """Text shards of the languages (default: every language with train shards under root).

    Languages already made from the same shards with the same rules are skipped. Returns the
    statistics of the requested languages and the list of languages (re)made in this run.
    """
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

    if nj <= 1 or len(todo) <= 1:
        for lang in todo:
            record(lang, prepare_language(out, lang, plans[lang][0], rules, progress))
    else:
        _prepare_in_parallel(out, todo, plans, rules, nj, progress, record)
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


def _prepare_in_parallel(out: Path, todo: list[str], plans: dict, rules: CleaningRules, nj: int, progress: bool,
                         record) -> None:
    """One language per worker process; languages finished before an error are still recorded."""
    from tqdm import tqdm
    error = None
    with ProcessPoolExecutor(max_workers=nj) as pool, \
            tqdm(total=len(todo), desc="mc4 languages", unit="lang", disable=not progress) as bar:
        futures = {pool.submit(prepare_language, out, lang, plans[lang][0], rules): lang for lang in todo}
        for future in as_completed(futures):
            if future.cancelled():
                continue
            try:
                record(futures[future], future.result())
            except DataDirError as e:
                error = error or e
                for other in futures:
                    other.cancel()
            bar.update()
    if error is not None:
        raise error
