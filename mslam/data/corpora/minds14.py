"""MINDS-14 (PolyAI, e-banking intents over the phone) as Kaldi data dirs for intent classification.

The download is one archive, https://poly-public-data.s3.amazonaws.com/MInDS-14/MInDS-14.zip, holding
two more. `prepare` extracts them once, into the layout of ESPnet's egs2/minds14 recipe:

    <root>/MInDS-14.zip
    <root>/MInDS-14/{audio.zip,text.zip,license.md}
    <root>/MInDS-14/audio/<lang>~<INTENT>/response_<n>.wav     (8 kHz; from audio.zip)
    <root>/MInDS-14/text/<lang>.csv                             (from text.zip)

Each folder appears only once its extraction is complete (it is renamed into place; ESPnet's
recipe checks license.md instead), and a `<root>/MInDS-14/` that already holds `audio/` and `text/`
is used as is. Each CSV has a header
and 4 columns: filepath (relative to audio/), text_asr, the English translation, intent.

MINDS-14 has no splits of its own. ASSUMPTION: the paper evaluates on XTREME-S's fixed split lists,
which we do not have; like ESPnet's recipe we split every language 80/10/10 at random, stratified by
intent, from a seed (deterministic, and independent of which other languages are prepared). At
least one utterance of every intent stays in train.

`<out>/{train,dev,test}` hold all requested languages: wav.scp, text (text_asr), text.en, utt2intent
(lower-case class name, INTENTS), utt2lang (`de-DE` style), utt2spk/spk2utt. Speakers are not
published, so every utterance is its own pseudo speaker. Utterance ids are the filepath without
`.wav`, `/` -> `_` (ESPnet's `<folder>_<file>`), e.g. `de-DE~BALANCE_response_1`.
"""
from __future__ import annotations

import csv
import logging
import os
import random
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from mslam.data.corpora import common
from mslam.data.corpora.common import DOWNLOAD_STAGE, build_data_dir, extraction_folder, install_dir
from mslam.data.kaldi import DataDirError, Utterance

log = logging.getLogger("mslam.data")

ARCHIVE = "MInDS-14.zip"
CORPUS_DIR = "MInDS-14"
# The 14 language varieties (PolyAI minds14.py `_ALL_CONFIGS`).
LANGS = ("cs-CZ", "de-DE", "en-AU", "en-GB", "en-US", "es-ES", "fr-FR", "it-IT", "ko-KR", "nl-NL", "pl-PL",
         "pt-PT", "ru-RU", "zh-CN")
# The 14 intent classes in their ClassLabel order (the fine-tuning labels file).
INTENTS = ("abroad", "address", "app_error", "atm_limit", "balance", "business_loan", "card_issues",
           "cash_deposit", "direct_debit", "freeze", "high_value_payment", "joint_account",
           "latest_transactions", "pay_bill")
SPLITS = ("train", "dev", "test")
# ASSUMPTION: read by position, as the XTREME-S loader does: only filepath, text_asr and intent are
# confirmed names; the third column (the English translation) is named text_translated in the fixture.
CSV_COLUMNS = 4   # filepath, text_asr, English translation, intent

GET_IT = f"run {DOWNLOAD_STAGE}, or point MINDS14 in db.sh at a complete copy"
DAMAGED = f"the download is incomplete or corrupt: delete it and {GET_IT}"


def parse_langs(spec: str | None) -> list[str]:
    """`de-DE,fr-FR` (or `de-DE fr-FR`) -> ['de-DE', 'fr-FR']; None or 'all' -> every language."""
    return common.parse_langs(spec, LANGS, "MINDS-14")


def download_files() -> list[str]:
    """The paths under the URL base that the download stage fetches (one archive for all languages)."""
    return [ARCHIVE]


# ---- archives ------------------------------------------------------------------------------

def unzip(archive: Path, dest: Path, progress: bool) -> None:
    """Extract a zip into `dest` through a temporary folder renamed into place when complete."""
    if not archive.is_file():
        raise DataDirError(f"{archive}: not found (nor the extracted folder {dest}); {GET_IT}")
    with extraction_folder(archive, dest.with_name(f".{dest.name}.extracting"), DAMAGED) as tmp, \
            zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        with tqdm(total=sum(m.file_size for m in members), desc=f"extract {archive.name}", unit="B",
                  unit_scale=True, disable=not progress, dynamic_ncols=True) as bar:
            for member in members:
                zf.extract(member, tmp)   # zipfile drops absolute paths and '..' parts
                bar.update(member.file_size)
    os.replace(tmp, dest)


def extract(root: Path, progress: bool = True) -> Path:
    """Extract what is not extracted yet; returns the corpus folder <root>/MInDS-14."""
    corpus = root / CORPUS_DIR
    if (corpus / "audio").is_dir() and (corpus / "text").is_dir():
        return corpus
    if not corpus.is_dir():
        outer = root / f".{CORPUS_DIR}.outer"   # the whole archive; only its MInDS-14/ is kept
        if outer.exists():
            shutil.rmtree(outer)
        unzip(root / ARCHIVE, outer, progress)
        if not (outer / CORPUS_DIR).is_dir():
            shutil.rmtree(outer)
            raise DataDirError(f"{root / ARCHIVE}: has no top folder {CORPUS_DIR}/; is it the MINDS-14 archive? "
                               f"delete it and {GET_IT}")
        os.replace(outer / CORPUS_DIR, corpus)
        shutil.rmtree(outer)
    for inner in ("text", "audio"):
        if not (corpus / inner).is_dir():
            unzip(corpus / f"{inner}.zip", corpus / inner, progress)
    return corpus


# ---- transcripts and labels ----------------------------------------------------------------

@dataclass
class Row:
    """One CSV row, with where it came from."""
    where: str            # '<csv>:<line>'
    lang: str
    filepath: str         # relative to audio/
    text: str
    text_en: str
    intent: str

    @property
    def utt_id(self) -> str:
        stem = self.filepath[:-4] if self.filepath.lower().endswith(".wav") else self.filepath
        utt = "_".join(stem.replace("/", " ").split())
        return utt if utt.startswith(self.lang) else f"{self.lang}_{utt}"


def read_csv(corpus: Path, lang: str) -> list[Row]:
    """The rows of text/<lang>.csv whose audio exists; a malformed row or missing audio is an error.
    A row that repeats an earlier one exactly is counted and dropped (it adds nothing)."""
    path = corpus / "text" / f"{lang}.csv"
    if not path.is_file():
        raise DataDirError(f"{path}: not found; delete {corpus / 'text'} to extract text.zip again, or {GET_IT}")
    rows: dict[str, Row] = {}
    repeats = 0
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=",", skipinitialspace=True)
        header = next(reader, None)
        if header is None or len(header) != CSV_COLUMNS or header[0].lower().endswith(".wav"):
            raise DataDirError(f"{path}:1: expected the header 'filepath,text_asr,<english>,intent', got {header}")
        for fields in reader:
            where = f"{path}:{reader.line_num}"
            if not fields:
                continue
            if len(fields) != CSV_COLUMNS:
                raise DataDirError(f"{where}: {len(fields)} columns, expected {CSV_COLUMNS} "
                                   "(filepath, text_asr, english transcription, intent)")
            filepath, text, text_en, intent = (x.strip() for x in fields)
            intent = intent.lower()
            if intent not in INTENTS:
                raise DataDirError(f"{where}: intent '{fields[3]}' is not one of the 14 classes: {' '.join(INTENTS)}")
            if not filepath:
                raise DataDirError(f"{where}: empty filepath")
            row = Row(where, lang, filepath, text, text_en, intent)
            first = rows.get(filepath)
            if first is not None:
                if (first.text, first.text_en, first.intent) != (text, text_en, intent):
                    raise DataDirError(f"{where}: {filepath} is also on {first.where} with other labels; "
                                       "keep the right row and delete the other")
                repeats += 1
                continue
            if not (corpus / "audio" / filepath).is_file():
                raise DataDirError(f"{where}: audio file {corpus / 'audio' / filepath} not found; delete "
                                   f"{corpus / 'audio'} to extract audio.zip again, or {GET_IT}")
            rows[filepath] = row
    if repeats:
        log.info("minds14 %s: %d row(s) repeat an earlier row exactly; each kept once", lang, repeats)
    return list(rows.values())


# ---- the split -----------------------------------------------------------------------------

def _round(x: float) -> int:
    return int(x + 0.5)


def _share(counts: dict[str, int], caps: dict[str, int], total: int, rng: random.Random) -> dict[str, int]:
    """`total` items drawn from the classes in proportion to their counts (whole parts first, then
    the largest remainders, ties broken by `rng`), at most caps[c] from class c."""
    n = sum(counts.values())
    quota = {c: counts[c] * total / n if n else 0.0 for c in counts}
    take = {c: min(int(quota[c]), caps[c]) for c in counts}
    tie = {c: rng.random() for c in counts}
    order = sorted(counts, key=lambda c: (int(quota[c]) - quota[c], tie[c]))
    while sum(take.values()) < total:
        room = [c for c in order if take[c] < caps[c]]
        if not room:
            break
        for c in room[:total - sum(take.values())]:
            take[c] += 1
    return take


def split_language(rows: list[Row], seed: int, dev_frac: float, test_frac: float) -> dict[str, list[Row]]:
    """A random split of one language's rows stratified by intent: about dev_frac and test_frac of
    the rows (and of each intent) in dev and test, the rest in train, one of each intent at least."""
    if not rows:
        return {split: [] for split in SPLITS}
    rng = random.Random(f"minds14-{seed}-{rows[0].lang}")
    by_intent: dict[str, list[Row]] = {}
    for row in sorted(rows, key=lambda r: r.filepath):
        by_intent.setdefault(row.intent, []).append(row)
    by_intent = dict(sorted(by_intent.items()))
    for members in by_intent.values():
        rng.shuffle(members)
    counts = {intent: len(members) for intent, members in by_intent.items()}
    caps = {intent: n - 1 for intent, n in counts.items()}   # one stays in train
    test = _share(counts, caps, _round(len(rows) * test_frac), rng)
    caps = {intent: caps[intent] - test[intent] for intent in caps}
    dev = _share(counts, caps, _round(len(rows) * dev_frac), rng)
    out: dict[str, list[Row]] = {split: [] for split in SPLITS}
    for intent, members in by_intent.items():
        out["test"] += members[:test[intent]]
        out["dev"] += members[test[intent]:test[intent] + dev[intent]]
        out["train"] += members[test[intent] + dev[intent]:]
    return out


# ---- data dirs -----------------------------------------------------------------------------

def prepare(root: str | os.PathLike, out: str | os.PathLike, langs: list[str] | None = None, seed: int = 42,
            dev_frac: float = 0.1, test_frac: float = 0.1, progress: bool = True) -> dict[str, int]:
    """Extract what is not extracted yet and write <out>/{train,dev,test}. Returns utterances per split."""
    if not (0 <= dev_frac < 1 and 0 <= test_frac < 1 and dev_frac + test_frac < 1):
        raise ValueError(f"dev_frac {dev_frac} and test_frac {test_frac}: each in [0, 1) and together below 1")
    root, out = Path(root), Path(out)
    langs = list(LANGS) if langs is None else langs
    corpus = extract(root, progress)
    per_split: dict[str, list[Utterance]] = {split: [] for split in SPLITS}
    for lang in tqdm(langs, desc="read MINDS-14 CSVs", unit="lang", disable=not progress, dynamic_ncols=True):
        for split, rows in split_language(read_csv(corpus, lang), seed, dev_frac, test_frac).items():
            per_split[split] += [Utterance(id=r.utt_id, wav=str((corpus / "audio" / r.filepath).resolve()), text=r.text,
                                           speaker=r.utt_id, lang=lang, intent=r.intent, translations={"en": r.text_en})
                                 for r in rows]
    counts = {}
    for split, utts in per_split.items():
        if not utts:
            raise DataDirError(f"minds14: no utterances for {split} (languages {','.join(langs)}); "
                               "raise --dev-frac/--test-frac or add languages")
        changed = install_dir(build_data_dir(out / split, utts), out / split)
        log.info("minds14: %s %s (%d utterances)", "wrote" if changed else "unchanged", out / split, len(utts))
        counts[split] = len(utts)
    return counts
