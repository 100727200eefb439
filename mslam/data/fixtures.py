"""Tiny download fixtures: the on-disk layouts of VoxPopuli, Common Voice + CoVoST 2, FLEURS,
MINDS-14 and mC4, filled with the toy corpus of egs/mini (mslam/data/mini_corpus.py).

`make_fixtures(out_dir)` writes, under OUT, what each corpus's download server holds (the files
a recipe's download stage fetches: archives not extracted), one folder per download URL base, so a
recipe can point its base URL at `file://OUT/<corpus>` and run its download and data preparation
offline. Layout facts (archive types, member names, TSV/CSV columns, audio formats and rates)
follow the project's corpus reference notes; where those are silent, the choice made here is
marked ASSUMPTION in a comment.

    OUT/voxpopuli/        https://dl.fbaipublicfiles.com/voxpopuli
        audios/<lang>_<year>.tar               <lang>/<year>/<event_id>.ogg (per-language session audio)
        audios/original_<year>.tar             original/<year>/<session_id>_original.ogg (floor audio)
        annotations/unlabelled_v2.tsv.gz       TAB: event_id segment_no start end
        annotations/asr/asr_<lang>.tsv.gz      '|': id_ paragraph_id session_id ... vad split gender (14 columns)
    OUT/commonvoice/      the Common Voice bucket (per-language tarballs of release v4)
        cv-corpus-4-2019-12-10/<lang>.tar.gz   clips/*.mp3 (48 kHz) + validated/train/dev/test/invalidated/other.tsv
    OUT/covost2/          https://dl.fbaipublicfiles.com/covost
        covost_v2.<lang>_en.tsv.tar.gz         covost_v2.<lang>_en.tsv (path sentence translation client_id split)
    OUT/fleurs/           https://huggingface.co/datasets/google/fleurs/resolve/main
        data/<lang_region>/audio/{train,dev,test}.tar.gz   <split>/<file_name>.wav (16 kHz)
        data/<lang_region>/{train,dev,test}.tsv            7 columns, no header
    OUT/minds14/          https://poly-public-data.s3.amazonaws.com/MInDS-14
        MInDS-14.zip   MInDS-14/{audio.zip,text.zip,license.md}; audio.zip: <lang>~<INTENT>/response_<n>.wav
                       (8 kHz); text.zip: <lang>.csv (filepath,text_asr,text_translated,intent)
    OUT/mc4/              https://huggingface.co/datasets/allenai/c4/resolve/<revision of 2021-06-14>
        multilingual/c4-<lang>.tfrecord-00000-of-<N>.json.gz             JSON lines: text, timestamp, url
        multilingual/c4-<lang>-validation.tfrecord-00000-of-<M>.json.gz
    OUT/MANIFEST.json     "files": {"<corpus>/<path>": {"sha256", "size"}} for every file above;
                          "corpora": {<corpus>: {"url_base", "languages", "files": [<path> under the
                          base], ...}}: the download URL of a file is `<url_base>/<path>`

Only the first shard / a couple of years / a handful of utterances per language exist: recipes
under test must be told which shards, years and languages to fetch (MANIFEST.json lists them).

Deterministic: the same toy corpus and seed give the same bytes (fixed tar/zip timestamps and
owners, sorted members, gzip mtime 0, a fixed Ogg stream serial number instead of libsndfile's
time-seeded one).
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import struct
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mslam.data.audio import resample
from mslam.data.corpora.covost2 import CV_RELEASE
from mslam.data.corpora.mc4 import read_shard_table as mc4_shard_counts
from mslam.data.corpora.mc4 import shard_name as mc4_shard_name
from mslam.data.corpora.fleurs import SPLITS as FLEURS_SPLITS
from mslam.data.corpora.minds14 import INTENTS as MINDS14_INTENTS
from mslam.data.kaldi import sha256_file

# ---- what is built -------------------------------------------------------------------------

URL_BASES = {
    "voxpopuli": "https://dl.fbaipublicfiles.com/voxpopuli",
    "commonvoice": "https://voice-prod-bundler-ee1969a6ce8178826482b88e843c335139bd3fb4.s3.amazonaws.com",
    "covost2": "https://dl.fbaipublicfiles.com/covost",
    "fleurs": "https://huggingface.co/datasets/google/fleurs/resolve/main",
    "minds14": "https://poly-public-data.s3.amazonaws.com/MInDS-14",
    "mc4": "https://huggingface.co/datasets/allenai/c4/resolve/1ddc917116b730e1859edef32896ec5c16be51d0",
}
CORPORA = tuple(URL_BASES)
MANIFEST = "MANIFEST.json"

# Languages per corpus, as the toy corpus's language code -> the corpus's own code.
VOXPOPULI_LANGS = {"de": "de", "fr": "fr", "pl": "pl"}            # VoxPopuli ASR languages the toy has
COVOST_LANGS = {"de": "de", "fr": "fr", "es": "es"}               # X->En sources (Common Voice codes)
FLEURS_LANGS = {"de": "de_de", "fr": "fr_fr", "ru": "ru_ru"}
MINDS14_LANGS = {"de": "de-DE", "fr": "fr-FR", "it": "it-IT"}     # it-IT: the toy's 8 kHz language
MC4_LANGS = {"de": "de", "ru": "ru", "ar": "ar"}                  # three scripts

# VoxPopuli: two plenary sessions, in the years of the `10k` subset (2019, 2020; both dated before
# 2020-08-01, so they pass every subset filter). ASSUMPTION: event ids are `<session_id>_<lang>`,
# the session id shaped like the documented example `20180206-0900-PLENARY-15`.
VOXPOPULI_SESSIONS = (("20190115-0900-PLENARY-3", 9 * 3600), ("20200212-1500-PLENARY-7", 15 * 3600))
VOXPOPULI_RATE = 16000
VOXPOPULI_UNLABELLED_COLUMNS = ("event_id", "segment_no", "start", "end")
VOXPOPULI_ASR_COLUMNS = ("id_", "paragraph_id", "session_id", "speaker_id", "original_text", "normed_text",
                         "decoded", "start", "end", "cer", "wer", "vad", "split", "gender")

CV_RATE = 48000
CV_COLUMNS = ("client_id", "path", "sentence", "up_votes", "down_votes", "age", "gender", "accent")
# ASSUMPTION: the six TSVs of a v4 tarball (the non-validated names are not confirmed).
CV_TSVS = ("validated.tsv", "train.tsv", "dev.tsv", "test.tsv", "invalidated.tsv", "other.tsv")
# ASSUMPTION: full CoVoST 2 header (consumers use path, translation, split; README says it also has
# the sentence of validated.tsv).
COVOST_COLUMNS = ("path", "sentence", "translation", "client_id", "split")

FLEURS_RATE = 16000

MINDS14_RATE = 8000
# ASSUMPTION: the third column's name (only filepath, text_asr and intent are confirmed).
MINDS14_COLUMNS = ("filepath", "text_asr", "text_translated", "intent")
# The toy corpus's six intents on MINDS-14's classes (by what the toy phrases ask for):
#   balance       "what is the balance of account number N"    -> balance
#   transfer      "transfer N euros to Anna"                   -> high_value_payment (paying someone a sum)
#   lost_card     "I lost my card number N" / "... stolen"     -> card_issues
#   pay_bill      "I want to pay a bill of N euros"            -> pay_bill
#   exchange_rate "how many dollars do I get for N euros"      -> abroad (foreign currency / money abroad)
#   open_account  "I would like to open an account for Anna"   -> joint_account (an account with someone)
TOY_TO_MINDS14 = {"balance": "balance", "transfer": "high_value_payment", "lost_card": "card_issues",
                  "pay_bill": "pay_bill", "exchange_rate": "abroad", "open_account": "joint_account"}


# Archive metadata: every member has this mtime (2020-01-01 00:00:00 UTC) and owner 0/0.
FIXED_MTIME = 1577836800
ZIP_DATE = (2020, 1, 1, 0, 0, 0)


class FixtureError(RuntimeError):
    """The fixtures cannot be built; the message says why."""


# ---- the toy corpus as read back from its data dirs ----------------------------------------

@dataclass
class ToyUtt:
    id: str
    lang: str
    split: str
    speaker: str
    wav: str | None = None
    text: str | None = None
    text_en: str | None = None
    intent: str | None = None

    @property
    def voice(self) -> str:
        # speakers are `<lang>-<voice>-p<pitch>s<rate>`; voice `def` or m1.., f1..
        return self.speaker.split("-")[1]

    @property
    def gender(self) -> str:
        # espeak-ng's default voices are male; variants mN / fN say it.
        return "female" if self.voice.startswith("f") else "male"


def read_toy(corpus: Path, name: str) -> list[ToyUtt]:
    """Every utterance of a toy data dir (all splits), in split then id order."""
    from mslam.data.kaldi import DataDir
    out = []
    for split in ("train", "dev", "test"):
        d = DataDir(corpus / name / split)
        t = d.tables
        for utt in d.utt_ids:
            wav = t.get("wav.scp", {}).get(utt)
            lang = t["utt2lang"][utt]
            if wav is not None and not Path(wav).is_file():
                # wav.scp holds absolute paths: find the audio of a moved corpus at its usual place.
                wav = str(corpus / "audio" / lang / f"{utt}.wav")
            out.append(ToyUtt(utt, lang, split, t["utt2spk"][utt], wav, t.get("text", {}).get(utt),
                              t.get("text.en", {}).get(utt), t.get("utt2intent", {}).get(utt)))
    return out


def _by(utts: list[ToyUtt], lang: str, split: str | None = None) -> list[ToyUtt]:
    return [u for u in utts if u.lang == lang and (split is None or u.split == split)]


def _pick(rng: random.Random, utts: list[ToyUtt], n: int, what: str) -> list[ToyUtt]:
    if len(utts) < n:
        raise FixtureError(f"{what}: the toy corpus has {len(utts)} utterances, {n} needed")
    return sorted(rng.sample(utts, n), key=lambda u: u.id)


def _raw(text: str) -> str:
    """A transcript as written (capital initial, final full stop), for the corpora's raw-text columns."""
    text = text.strip()
    return (text[:1].upper() + text[1:] + ".") if text else text


def _stable_int(*parts: object, digits: int) -> int:
    h = hashlib.sha256("\x00".join(map(str, parts)).encode("utf-8")).hexdigest()
    return int(h, 16) % (10 ** digits)


# ---- audio ---------------------------------------------------------------------------------

_AUDIO_CACHE: dict[tuple[str, int], np.ndarray] = {}


def load(utt: ToyUtt, rate: int) -> np.ndarray:
    """The utterance as float32 mono at `rate` (resampled when the toy file has another rate)."""
    import soundfile
    key = (utt.wav, rate)
    if key not in _AUDIO_CACHE:
        samples, orig = soundfile.read(utt.wav, dtype="float32", always_2d=True)
        wave = resample(torch.from_numpy(samples.mean(axis=1)), orig, rate).numpy()
        _AUDIO_CACHE[key] = np.clip(wave, -1.0, 1.0).astype(np.float32)
    return _AUDIO_CACHE[key]


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


_OGG_CRC = _crc_table()


def ogg_crc(page: bytes) -> int:
    """The Ogg page checksum (CRC-32, polynomial 0x04c11db7, not reflected, initial 0)."""
    crc = 0
    table = _OGG_CRC
    for b in page:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[((crc >> 24) ^ b) & 0xFF]
    return crc


def set_ogg_serial(data: bytes, serial: int) -> bytes:
    """Rewrite the stream serial number of every page (and the page checksums).

    libsndfile seeds the serial from the clock, so two encodings of the same audio differ only
    there; a fixed serial makes the file a function of its samples.
    """
    out = bytearray(data)
    pos = 0
    while pos < len(out):
        if out[pos:pos + 4] != b"OggS":
            raise FixtureError(f"not an Ogg page at byte {pos}")
        nseg = out[pos + 26]
        size = 27 + nseg + sum(out[pos + 27:pos + 27 + nseg])
        struct.pack_into("<I", out, pos + 14, serial & 0xFFFFFFFF)
        struct.pack_into("<I", out, pos + 22, 0)
        struct.pack_into("<I", out, pos + 22, ogg_crc(bytes(out[pos:pos + size])))
        pos += size
    return bytes(out)


def encode(samples: np.ndarray, rate: int, fmt: str, serial_key: str = "") -> bytes:
    """Encode mono float samples: 'wav' (16-bit PCM), 'ogg' (Vorbis) or 'mp3' (MPEG layer III)."""
    import soundfile
    buf = io.BytesIO()
    if fmt == "wav":
        soundfile.write(buf, samples, rate, format="WAV", subtype="PCM_16")
        return buf.getvalue()
    if fmt == "ogg":
        soundfile.write(buf, samples, rate, format="OGG", subtype="VORBIS")
        return set_ogg_serial(buf.getvalue(), _stable_int("ogg", serial_key, digits=9))
    if fmt == "mp3":
        soundfile.write(buf, samples, rate, format="MP3", subtype="MPEG_LAYER_III")
        return buf.getvalue()
    raise ValueError(f"unknown audio format {fmt!r}")


def concat(waves: list[np.ndarray], rate: int, gap: float = 0.5,
           lead: float = 0.3) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Join utterances into one recording with silences between; returns it and each one's (start, end)
    in seconds. Boundaries fall on 10 ms steps, so they print exactly with two decimals."""
    step = rate // 100
    pieces = [np.zeros(int(lead * rate), np.float32)]
    spans = []
    pos = pieces[0].size
    for w in waves:
        padded = np.zeros(-(-w.size // step) * step, np.float32)
        padded[:w.size] = w
        spans.append((round(pos / rate, 2), round((pos + padded.size) / rate, 2)))
        pieces += [padded, np.zeros(int(gap * rate), np.float32)]
        pos += padded.size + int(gap * rate)
    return np.concatenate(pieces), spans


# ---- archives ------------------------------------------------------------------------------

def _dirs_of(names: list[str]) -> list[str]:
    dirs = set()
    for name in names:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]) + "/")
    return sorted(dirs)


def make_tar(members: dict[str, bytes], *, compress: bool) -> bytes:
    """A tar (gzip'd when `compress`) of `members` plus their directories: sorted, mtime fixed,
    owner root (uid/gid 0, no names), files 0644, directories 0755."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        entries = [(d, None) for d in _dirs_of(list(members))] + [(n, members[n]) for n in members]
        for name, data in sorted(entries, key=lambda e: e[0]):
            info = tarfile.TarInfo(name.rstrip("/"))
            info.mtime, info.uid, info.gid, info.uname, info.gname = FIXED_MTIME, 0, 0, "", ""
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.mode, info.size = 0o644, len(data)
                tar.addfile(info, io.BytesIO(data))
    return gzip_bytes(raw.getvalue()) if compress else raw.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    """gzip with no file name and mtime 0 (the same bytes every time)."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def make_zip(members: dict[str, bytes]) -> bytes:
    """A zip of `members` plus their directory entries: sorted, fixed dates, deflated, Unix modes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        entries = [(d, None) for d in _dirs_of(list(members))] + [(n, members[n]) for n in members]
        for name, data in sorted(entries, key=lambda e: e[0]):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.create_system = 3   # Unix, whatever machine builds it
            if data is None:
                info.external_attr = (0o40755 << 16) | 0x10
                info.compress_type = zipfile.ZIP_STORED
                zf.writestr(info, b"")
            else:
                info.external_attr = 0o100644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return buf.getvalue()


def _table(rows: list[list[str]], delimiter: str, header: tuple[str, ...] | None = None) -> bytes:
    """Delimited text, one row a line, no quoting (fields are checked to need none)."""
    lines = []
    for row in ([list(header)] if header else []) + rows:
        for field in row:
            if any(c in field for c in (delimiter, "\n", "\r", '"', "\\")):
                raise FixtureError(f"field {field!r} would need quoting in a {delimiter!r}-separated table")
        lines.append(delimiter.join(row) + "\n")
    return "".join(lines).encode("utf-8")


# ---- the corpora ---------------------------------------------------------------------------

def build_voxpopuli(corpus: Path, seed: int) -> tuple[dict[str, bytes], dict]:
    """Per-language session audio + unlabelled segments; floor ("original") session audio + ASR manifests."""
    asr_utts = read_toy(corpus, "asr")
    speech_utts = read_toy(corpus, "speech")
    files: dict[str, bytes] = {}
    rate = VOXPOPULI_RATE
    # Per language: 3 train (the last one marked `invalid`, a split value get_asr_data skips),
    # 1 dev, 1 test transcribed segments; 4 other spoken utterances as unlabelled speech.
    asr_sel: dict[str, list[tuple[ToyUtt, str]]] = {}
    unl_sel: dict[str, list[ToyUtt]] = {}
    for toy_lang in VOXPOPULI_LANGS:
        rng = random.Random(f"fixtures-{seed}-voxpopuli-{toy_lang}")
        train = _pick(rng, _by(asr_utts, toy_lang, "train"), 3, f"voxpopuli {toy_lang} train")
        chosen = [(train[0], "train"), (train[1], "train"), (train[2], "invalid"),
                  (_pick(rng, _by(asr_utts, toy_lang, "dev"), 1, "voxpopuli dev")[0], "dev"),
                  (_pick(rng, _by(asr_utts, toy_lang, "test"), 1, "voxpopuli test")[0], "test")]
        asr_sel[toy_lang] = chosen
        used = {u.id for u, _ in chosen}
        rest = [u for u in _by(speech_utts, toy_lang, "train") if u.id not in used]
        unl_sel[toy_lang] = _pick(rng, rest, 4, f"voxpopuli {toy_lang} unlabelled")

    # Unlabelled: one recording per language and session, its utterances as segments.
    unl_rows: list[list[str]] = []
    per_year: dict[tuple[str, str], dict[str, bytes]] = {}
    n_segments = 0
    for s, (session, _) in enumerate(VOXPOPULI_SESSIONS):
        year = session[:4]
        for toy_lang, lang in VOXPOPULI_LANGS.items():
            utts = unl_sel[toy_lang][s::len(VOXPOPULI_SESSIONS)]
            event_id = f"{session}_{lang}"
            audio, spans = concat([load(u, rate) for u in utts], rate)
            member = f"{lang}/{year}/{event_id}.ogg"
            per_year.setdefault((lang, year), {})[member] = encode(audio, rate, "ogg", event_id)
            # ASSUMPTION: segment numbers count from 0 within an event.
            for no, (start, end) in enumerate(spans):
                unl_rows.append([event_id, str(no), f"{start:.2f}", f"{end:.2f}"])
                n_segments += 1
    for (lang, year), members in sorted(per_year.items()):
        files[f"audios/{lang}_{year}.tar"] = make_tar(members, compress=False)
    unl_rows.sort(key=lambda r: (r[0], int(r[1])))
    files["annotations/unlabelled_v2.tsv.gz"] = gzip_bytes(_table(unl_rows, "\t", VOXPOPULI_UNLABELLED_COLUMNS))

    # Transcribed: the floor audio of each session holds every language's speakers in turn.
    asr_rows: dict[str, list[list[str]]] = {lang: [] for lang in VOXPOPULI_LANGS.values()}
    speakers: dict[str, str] = {}
    for s, (session, clock) in enumerate(VOXPOPULI_SESSIONS):
        year, date = session[:4], session[:8]
        turns = []   # round robin over languages
        for k in range(max(len(v) for v in asr_sel.values())):
            for toy_lang in VOXPOPULI_LANGS:
                if k % len(VOXPOPULI_SESSIONS) == s and k < len(asr_sel[toy_lang]):
                    turns.append((toy_lang, *asr_sel[toy_lang][k]))
        audio, spans = concat([load(u, rate) for _, u, _ in turns], rate)
        files[f"audios/original_{year}.tar"] = make_tar(
            {f"original/{year}/{session}_original.ogg": encode(audio, rate, "ogg", f"{session}_original")},
            compress=False)
        counter: dict[str, int] = {}
        for (toy_lang, u, split), (start, end) in zip(turns, spans):
            lang = VOXPOPULI_LANGS[toy_lang]
            t = clock + int(start)
            hms = f"{t // 3600:02d}:{t % 3600 // 60:02d}:{t % 60:02d}"
            n = counter[lang] = counter.get(lang, 0) + 1
            # Shapes as in the documented example `hr_20180206-16:10:06_5`. ASSUMPTION: paragraph_id
            # is the id_ without its segment number.
            paragraph = f"{lang}_{date}-{hms}"
            mid = round((start + end) / 2, 2)
            # Every other row has its speech in two VAD pieces (contiguous: the same audio once joined).
            vad = [[start, mid], [mid, end]] if n % 2 == 0 else [[start, end]]
            speaker = speakers.setdefault(u.speaker, str(100000 + _stable_int(seed, u.speaker, digits=5)))
            normed = u.text.lower()
            asr_rows[lang].append([f"{paragraph}_{n}", paragraph, session, speaker, _raw(u.text), normed, normed,
                                   f"{start:.2f}", f"{end:.2f}", "0.0", "0.0", repr(vad), split, u.gender])
    for lang, rows in asr_rows.items():
        files[f"annotations/asr/asr_{lang}.tsv.gz"] = gzip_bytes(_table(rows, "|", VOXPOPULI_ASR_COLUMNS))
    info = {"languages": list(VOXPOPULI_LANGS.values()), "years": sorted({s[:4] for s, _ in VOXPOPULI_SESSIONS}),
            "sessions": [s for s, _ in VOXPOPULI_SESSIONS], "unlabelled_segments": n_segments,
            "transcribed_segments": sum(len(r) for r in asr_rows.values())}
    return files, info


def build_covost(corpus: Path, seed: int) -> tuple[dict[str, bytes], dict[str, bytes], dict]:
    """Common Voice v4 per-language tarballs (mp3 clips, 48 kHz) and CoVoST 2 X->En translation TSVs."""
    st = read_toy(corpus, "st")
    cv_files: dict[str, bytes] = {}
    covost_files: dict[str, bytes] = {}
    counts = {}
    accents = {"de": "germany", "fr": "france", "es": ""}   # ASSUMPTION: CV v4 accent values (may be empty)
    ages = ("twenties", "thirties", "fourties", "fifties", "")
    for toy_lang, lang in COVOST_LANGS.items():
        rng = random.Random(f"fixtures-{seed}-covost2-{toy_lang}")
        chosen = [(u, split) for split, n in (("train", 3), ("dev", 1), ("test", 1))
                  for u in _pick(rng, _by(st, toy_lang, split), n, f"covost2 {toy_lang} {split}")]
        clip_numbers = sorted(rng.sample(range(17_000_000, 19_000_000), len(chosen)))
        members: dict[str, bytes] = {}
        cv_rows: dict[str, list[list[str]]] = {name: [] for name in CV_TSVS}
        covost_rows = []
        for (u, split), number in zip(chosen, clip_numbers):
            path = f"common_voice_{lang}_{number}.mp3"
            members[f"clips/{path}"] = encode(load(u, CV_RATE), CV_RATE, "mp3")
            # Common Voice client ids are 128 hex digits (a SHA-512).
            client = hashlib.sha512(f"{seed}-{u.speaker}".encode()).hexdigest()
            sentence = _raw(u.text)
            row = [client, path, sentence, "2", "0", ages[_stable_int(u.speaker, digits=3) % len(ages)],
                   u.gender, accents.get(lang, "")]
            cv_rows["validated.tsv"].append(row)
            cv_rows[f"{split}.tsv"].append(row)
            covost_rows.append([path, sentence, _raw(u.text_en), client, split])
        # One train row carries CoVoST 2's extended-train value (counted as train by consumers).
        next(r for r in covost_rows if r[4] == "train")[4] = "train_covost"
        for name, rows in cv_rows.items():
            # ASSUMPTION: invalidated.tsv and other.tsv exist with the same header (left empty here).
            members[name] = _table(rows, "\t", CV_COLUMNS)
        cv_files[f"{CV_RELEASE}/{lang}.tar.gz"] = make_tar(members, compress=True)
        tsv_name = f"covost_v2.{lang}_en.tsv"
        covost_files[f"{tsv_name}.tar.gz"] = make_tar(
            {tsv_name: _table(sorted(covost_rows), "\t", COVOST_COLUMNS)}, compress=True)
        counts[lang] = len(chosen)
    info = {"languages": list(COVOST_LANGS.values()), "target": "en", "clips": counts, "release": CV_RELEASE}
    return cv_files, covost_files, info


def _char_tokens(text: str) -> str:
    # ASSUMPTION: FLEURS's 5th column spells the transcription character by character, words ended by `|`.
    return " ".join(" ".join(word) + " |" for word in text.split())


def build_fleurs(corpus: Path, seed: int) -> tuple[dict[str, bytes], dict]:
    """Per language and split: audio/<split>.tar.gz of 16 kHz wavs and a 7-column TSV without header."""
    langid = read_toy(corpus, "langid")
    # Transcripts of the spoken numbers: the ASR data dir, else speech translation (non-English).
    # The English text (speech translation references) names the sentence.
    texts = {u.id: u for u in read_toy(corpus, "st")}
    for u in read_toy(corpus, "asr"):
        if u.id in texts and texts[u.id].text != u.text:
            raise FixtureError(f"fleurs: {u.id} has different transcripts in asr/ and st/")
    files: dict[str, bytes] = {}
    chosen: list[ToyUtt] = []
    for toy_lang in FLEURS_LANGS:
        chosen += [u for u in _by(langid, toy_lang) if u.id in texts]
    missing = [u.id for u in chosen if texts[u.id].text_en is None]
    if missing:
        raise FixtureError(f"fleurs: no English text for {missing[:3]}")
    # One id per sentence, shared across languages (as FLoRes sentence ids are): the English text.
    sentence_ids = {en: 1000 + i for i, en in enumerate(sorted({texts[u.id].text_en for u in chosen}))}
    counts = {}
    for toy_lang, code in FLEURS_LANGS.items():
        utts = [u for u in chosen if u.lang == toy_lang]
        counts[code] = len(utts)
        for split in FLEURS_SPLITS:
            members, rows = {}, []
            for u in (x for x in utts if x.split == split):
                t = texts[u.id]
                audio = load(u, FLEURS_RATE)
                # Numeric file names like the corpus's (ASSUMPTION on the exact digits).
                file_name = f"{_stable_int(seed, 'fleurs', u.id, digits=19) + 10 ** 19}.wav"
                members[f"{split}/{file_name}"] = encode(audio, FLEURS_RATE, "wav")
                norm = t.text.lower()
                rows.append([str(sentence_ids[t.text_en]), file_name, _raw(t.text), norm, _char_tokens(norm),
                             str(audio.size), u.gender.upper()])
            if not rows:
                raise FixtureError(f"fleurs {code} {split}: no utterances")
            files[f"data/{code}/audio/{split}.tar.gz"] = make_tar(members, compress=True)
            files[f"data/{code}/{split}.tsv"] = _table(sorted(rows, key=lambda r: (int(r[0]), r[1])), "\t")
    return files, {"languages": list(FLEURS_LANGS.values()), "splits": list(FLEURS_SPLITS), "utterances": counts}


def build_minds14(corpus: Path, seed: int) -> tuple[dict[str, bytes], dict]:
    """MInDS-14.zip holding audio.zip (8 kHz wavs under <lang>~<INTENT>/), text.zip (<lang>.csv), license.md."""
    intent = read_toy(corpus, "intent")
    audio_members: dict[str, bytes] = {}
    text_members: dict[str, bytes] = {}
    counts = {}
    for toy_lang, code in MINDS14_LANGS.items():
        rng = random.Random(f"fixtures-{seed}-minds14-{toy_lang}")
        # Two phrases per toy intent (MINDS-14 itself has no splits).
        utts = []
        for toy_intent in TOY_TO_MINDS14:
            pool = [u for u in _by(intent, toy_lang) if u.intent == toy_intent]
            utts += _pick(rng, pool, 2, f"minds14 {toy_lang} {toy_intent}")
        rows = []
        numbers: dict[str, int] = {}
        for u in sorted(utts, key=lambda x: (MINDS14_INTENTS.index(TOY_TO_MINDS14[x.intent]), x.id)):
            label = TOY_TO_MINDS14[u.intent]
            folder = f"{code}~{label.upper()}"
            n = numbers[folder] = numbers.get(folder, 0) + 1
            filepath = f"{folder}/response_{n}.wav"
            audio_members[filepath] = encode(load(u, MINDS14_RATE), MINDS14_RATE, "wav")
            # ASSUMPTION: intents are written lower-case, as the loaders' class names.
            rows.append([filepath, u.text, u.text_en, label])
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter=",", lineterminator="\n")
        writer.writerow(MINDS14_COLUMNS)
        writer.writerows(rows)
        text_members[f"{code}.csv"] = buf.getvalue().encode("utf-8")
        counts[code] = len(rows)
    license_md = ("# MInDS-14 (test fixture)\n\nA stand-in for the MInDS-14 licence file: the recordings here are "
                  "synthetic speech from the mslam toy corpus.\nThe real MInDS-14 is released under CC BY 4.0.\n")
    outer = {"MInDS-14/audio.zip": make_zip(audio_members), "MInDS-14/text.zip": make_zip(text_members),
             "MInDS-14/license.md": license_md.encode("utf-8")}
    info = {"languages": list(MINDS14_LANGS.values()), "utterances": counts, "intent_map": dict(TOY_TO_MINDS14)}
    return {"MInDS-14.zip": make_zip(outer)}, info


def build_mc4(corpus: Path, seed: int) -> tuple[dict[str, bytes], dict]:
    """The first train and validation shard per language: gzip'd JSON lines {text, timestamp, url}."""
    sentences = read_toy(corpus, "text")
    files: dict[str, bytes] = {}
    docs = {}
    for toy_lang, lang in MC4_LANGS.items():
        rng = random.Random(f"fixtures-{seed}-mc4-{toy_lang}")
        for split, toy_split in (("train", "train"), ("validation", "dev")):   # mC4's split, the toy's
            pool = _by(sentences, toy_lang, toy_split)
            if not pool:
                raise FixtureError(f"mc4 {lang}: no {toy_split} sentences in the toy corpus")
            lines = []
            i = 0
            while i < len(pool):
                k = rng.randint(1, 3)   # a document: 1-3 sentences, one paragraph each
                text = "\n".join(_raw(u.text) for u in pool[i:i + k])
                i += k
                stamp = FIXED_MTIME - rng.randrange(0, 2 * 365 * 86400)
                y, mo, d, h, mi, s = time.gmtime(stamp)[:6]
                # ASSUMPTION: compact JSON, keys in field order, UTF-8 text.
                doc = {"text": text, "timestamp": f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}Z",
                       "url": f"https://{lang}.example.org/page/{rng.randrange(10 ** 6)}"}
                lines.append(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
            data = "".join(f"{line}\n" for line in lines).encode("utf-8")
            files[mc4_shard_name(lang, toy_split, 0)] = gzip_bytes(data)
            docs[f"{lang}/{split}"] = len(lines)
    shards = {lang: list(mc4_shard_counts()[lang]) for lang in MC4_LANGS.values()}
    return files, {"languages": list(MC4_LANGS.values()), "shards": shards,
                   "documents": docs}


# ---- the tree ------------------------------------------------------------------------------

def make_fixtures(out_dir: str | os.PathLike, corpus_dir: str | os.PathLike | None = None, seed: int = 0,
                  nj: int = 2) -> dict:
    """Write the download trees of all corpora under out_dir/<corpus>/ plus out_dir/MANIFEST.json.

    corpus_dir: a toy corpus (mslam.data.mini_corpus layout) to take audio and labels from; None
    generates the tiny one (with `seed`) in a temporary directory. What this function owns under
    out_dir (the corpus folders and MANIFEST.json) is replaced; nothing else is touched.
    Returns the manifest (also written as MANIFEST.json).
    """
    out = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="mslam-fixtures-") as tmp:
        if corpus_dir is None:
            from mslam.data.mini_corpus import generate
            corpus = Path(tmp) / "corpus"
            generate(corpus, size="tiny", seed=seed, nj=nj)
        else:
            corpus = Path(corpus_dir)
            if not (corpus / "summary.json").is_file():
                raise FixtureError(f"{corpus}: not a complete toy corpus (no summary.json)")
        _AUDIO_CACHE.clear()
        try:
            trees: dict[str, dict[str, bytes]] = {}
            info: dict[str, dict] = {}
            trees["voxpopuli"], info["voxpopuli"] = build_voxpopuli(corpus, seed)
            trees["commonvoice"], trees["covost2"], cv_info = build_covost(corpus, seed)
            info["commonvoice"] = {"languages": cv_info["languages"], "release": cv_info["release"]}
            info["covost2"] = cv_info
            trees["fleurs"], info["fleurs"] = build_fleurs(corpus, seed)
            trees["minds14"], info["minds14"] = build_minds14(corpus, seed)
            trees["mc4"], info["mc4"] = build_mc4(corpus, seed)
        finally:
            _AUDIO_CACHE.clear()
    out.mkdir(parents=True, exist_ok=True)
    for name in CORPORA + (MANIFEST,):
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    files = {}
    for name in CORPORA:
        for rel, data in sorted(trees[name].items()):
            path = out / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            files[f"{name}/{rel}"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    manifest = {
        "description": "download fixtures of mslam (toy-corpus audio in real corpus layouts); "
                       "each corpus folder stands for its url_base",
        "seed": seed,
        "corpora": {name: {"url_base": URL_BASES[name], **info[name],
                           "files": sorted(rel.split("/", 1)[1] for rel in files if rel.startswith(f"{name}/"))}
                    for name in CORPORA},
        "files": dict(sorted(files.items())),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def verify_tree(out_dir: str | os.PathLike) -> list[str]:
    """Problems of a fixture tree against its MANIFEST.json (missing files, wrong size or sha256)."""
    out = Path(out_dir)
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    problems = []
    for rel, meta in manifest["files"].items():
        path = out / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.stat().st_size != meta["size"]:
            problems.append(f"{rel}: {path.stat().st_size} bytes, manifest says {meta['size']}")
        elif sha256_file(path) != meta["sha256"]:
            problems.append(f"{rel}: sha256 differs from the manifest")
    return problems


def format_summary(manifest: dict) -> str:
    lines = []
    for name, c in manifest["corpora"].items():
        size = sum(manifest["files"][f"{name}/{rel}"]["size"] for rel in c["files"])
        lines.append(f"  {name:11s} {len(c['files']):2d} files, {size / 1024:7.1f} KiB  "
                     f"[{' '.join(c['languages'])}]  {c['url_base']}")
    total = sum(f["size"] for f in manifest["files"].values())
    lines.append(f"  total       {len(manifest['files'])} files, {total / 1024:.1f} KiB")
    return "\n".join(lines)
