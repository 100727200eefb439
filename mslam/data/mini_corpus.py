"""The offline toy corpus of egs/mini: every mSLAM data type, spoken by espeak-ng, no network.

Text comes from num2words (numbers spelled out in dozens of languages) and banking-intent
templates (mslam/data/mini/templates.py); speech from espeak-ng voices of those languages, with
voice variant, pitch and rate varied per speaker. One generator builds, under OUT:

    audio/<lang>/<utt>.wav            16 kHz 16-bit mono (the 8 kHz language's intent phrases: 8 kHz)
    speech/{train,dev,test}           unlabeled speech: every spoken utterance (numbers + phrases)
    asr/{train,dev,test}              paired speech-text for the ASR languages (text)
    st/{train,dev,test}               speech in X != en with English references (text, text.en)
    intent/{train,dev,test}           banking intents (text, text.en, utt2intent), like MINDS-14
    langid/{train,dev,test}           spoken numbers in every speech language (utt2lang), like FLEURS
    text/{train,dev,test}             unlabeled text, more languages than speech (text-only data dir)
    text_shards/<split>/<lang>.txt    the same sentences, one per line, like an mC4 shard
    mt/{train,dev,test}               text-only X->En pairs for zero-shot text translation (text, text.en)
    summary.json                      utterances, hours and sentences per data dir, split and language

Every data dir has utt2spk/spk2utt and utt2lang; the spoken ones also wav.scp (absolute paths)
and utt2num_samples (samples at the file's own rate). A speaker is a language, a voice variant
and a pitch/rate bucket: `de-m3-p1s2`; utterance ids are `<speaker>-n<index>` (numbers) and
`<speaker>-i<index>` (intent phrases), so sorting by id sorts by speaker.

Splits hold out both speakers and content: train, dev and test use disjoint espeak-ng voices,
and disjoint sets of numbers (0..9999, stratified by digit count), in every data dir and every
language, so a test score measures generalisation to new voices and new numbers.

The output is a function of (size, seed) only: per-utterance parameters come from seeded RNGs,
espeak-ng is deterministic, and files are assembled in a fixed order whatever `nj` is. espeak-ng
runs through its C library in fresh worker processes, a fixed chunk of utterances each (its
program's start-up would cost more than the speech), or through the program when the library
cannot be loaded; summary.json names the engine (their audio differs slightly).
"""
from __future__ import annotations

import bisect
import io
import json
import os
import random
import shutil
import struct
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mslam.data.kaldi import DataDir, Utterance, atomic_write_bytes, atomic_write_text, write_data_dir
from mslam.data.mini.templates import EN_NAMES, INTENTS, NAMES, TEMPLATES, check_templates
from mslam.data.tokenizer import normalize_text

# ---- languages -------------------------------------------------------------------------------

# Spoken languages (num2words and an espeak-ng voice for each): four scripts.
SPEECH_LANGS = ("en", "de", "fr", "es", "it", "pt", "nl", "pl", "cs", "sv", "ru", "uk", "ar", "he")
# Text-only languages (num2words, no speech at all): more scripts still.
TEXT_ONLY_LANGS = ("da", "no", "fi", "hu", "tr", "ro", "id", "sl", "vi", "ko", "ja", "kn", "te")
TEXT_LANGS = SPEECH_LANGS + TEXT_ONLY_LANGS
SCRIPTS = {
    **{lang: "Latin" for lang in ("en", "de", "fr", "es", "it", "pt", "nl", "pl", "cs", "sv", "da", "no",
                                  "fi", "hu", "tr", "ro", "id", "sl", "vi")},
    "ru": "Cyrillic", "uk": "Cyrillic", "ar": "Arabic", "he": "Hebrew", "ko": "Hangul", "ja": "CJK",
    "kn": "Kannada", "te": "Telugu",
}
ASR_LANGS = ("en", "de", "fr", "es", "pl", "ru")
ST_LANGS = tuple(lang for lang in SPEECH_LANGS if lang != "en")
INTENT_LANGS = tuple(TEMPLATES)
EIGHT_KHZ_LANG = "it"          # its intent phrases are stored at 8 kHz, as MINDS-14 recordings are
MT_LANGS = ST_LANGS + ("da", "ro")
ESPEAK_VOICE = {lang: lang for lang in SPEECH_LANGS}

SAMPLE_RATE = 16000
SPLITS = ("train", "dev", "test")
# espeak-ng voice variants per split ("def": the language's default voice): disjoint speakers.
VOICES = {
    "train": ("def", "m1", "m2", "m3", "m5", "f1", "f2", "f3"),
    "dev": ("m6", "f5"),
    "test": ("m4", "f4", "m7"),
}
PITCH_BUCKETS = ((30, 43), (44, 56), (57, 70))     # espeak-ng -p
RATE_BUCKETS = ((130, 156), (157, 183), (184, 210))  # espeak-ng -s, words per minute
NUMBER_RANGES = ((0, 9), (10, 99), (100, 999), (1000, 9999))


@dataclass(frozen=True)
class Size:
    """Counts per language and split (train, dev, test)."""
    numbers: tuple[int, int, int]        # spoken numbers per core speech language (the intent languages)
    numbers_extra: tuple[int, int, int]  # spoken numbers per other speech language
    phrases: tuple[int, int, int]        # spoken intent phrases per intent language (multiples of 6)
    text: tuple[int, int, int]           # unlabeled sentences per text language
    mt: tuple[int, int, int]             # X->En text pairs per MT language


# espeak-ng needs ~15 ms of one core per utterance, most of it start-up: `small` (~24k utterances)
# takes a few minutes on 2 cores.
SIZES = {
    "tiny": Size(numbers=(4, 2, 2), numbers_extra=(4, 2, 2), phrases=(6, 6, 6), text=(12, 4, 4), mt=(6, 3, 3)),
    # The learning tests' corpus: enough voices and content per language for small models to
    # generalise to held-out voices within a minute of training (~3k utterances, ~15 s to make).
    "learn": Size(numbers=(150, 20, 40), numbers_extra=(60, 10, 20), phrases=(120, 24, 48), text=(12, 4, 4),
                  mt=(6, 3, 3)),
    "small": Size(numbers=(1600, 200, 200), numbers_extra=(400, 100, 100), phrases=(420, 72, 72),
                  text=(3000, 200, 200), mt=(1000, 200, 200)),
    "base": Size(numbers=(6000, 600, 600), numbers_extra=(2000, 300, 300), phrases=(1800, 300, 300),
                 text=(20000, 1000, 1000), mt=(4000, 500, 500)),
}
DATA_DIRS = ("speech", "asr", "st", "intent", "langid", "text", "mt")
# Everything the generator writes under OUT (and removes before writing it again).
OWNED = ("audio", "text_shards", "summary.json") + DATA_DIRS


class CorpusError(RuntimeError):
    """The toy corpus cannot be generated; the message says what is missing or what failed."""


# ---- text ------------------------------------------------------------------------------------

def _num2words():
    try:
        from num2words import num2words
    except ImportError:  # pragma: no cover - installed by `make install`
        raise CorpusError("the toy corpus needs num2words (pip install num2words; `make install` does it)") from None
    return num2words


def clean(text: str, lang: str) -> str:
    """One spelling per sentence: no commas; English hyphens as spaces ("forty two")."""
    text = text.replace(",", " ")
    if lang == "en":
        text = text.replace("-", " ")
    return normalize_text(text)


def number_words(n: int, lang: str, *, ordinal: bool = False) -> str:
    return clean(_num2words()(n, lang=lang, to="ordinal" if ordinal else "cardinal"), lang)


def amount_words(n: int, lang: str) -> str:
    """A number as it is said before a noun (masculine/neuter currency): 'veintiún euros', 'einhundertein Euro'."""
    words = number_words(n, lang)
    if lang == "es" and words.endswith("uno"):
        words = words[:-3] + ("ún" if words.endswith("veintiuno") else "un")
    elif lang == "de" and words.endswith("eins"):
        words = words[:-1]
    return words


def number_groups(seed: int) -> dict[str, list[list[int]]]:
    """Split 0..9999 into train/dev/test numbers, 80/10/10 within each digit count.

    The same split holds for every language and data dir: a dev/test number is never spoken
    nor written in any train set. 0 and 1 always go to train (amounts start at 2).
    """
    rng = random.Random(f"mini-{seed}-numbers")
    groups: dict[str, list[list[int]]] = {s: [] for s in SPLITS}
    for lo, hi in NUMBER_RANGES:
        values = list(range(max(lo, 2), hi + 1))
        rng.shuffle(values)
        n_held = max(1, round(0.1 * (hi - lo + 1)))
        dev, test, train = values[:n_held], values[n_held:2 * n_held], values[2 * n_held:]
        if lo == 0:
            train += [0, 1]
        groups["train"].append(sorted(train))
        groups["dev"].append(sorted(dev))
        groups["test"].append(sorted(test))
    return groups


def _pick_number(rng: random.Random, pools: list[list[int]], minimum: int = 0) -> int:
    """A number balanced by digit count (spoken length then varies from a syllable to several words)."""
    while True:
        pool = pools[rng.randrange(len(pools))]
        start = bisect.bisect_left(pool, minimum)   # pools are sorted
        if start < len(pool):
            return pool[rng.randrange(start, len(pool))]


NUMBER_MARKERS = ("number", "Nummer", "numéro", "número", "numero", "numer", "номер")


def render_phrase(lang: str, intent: str, template: int, number: int, name: int) -> tuple[str, str]:
    """A phrase in `lang` and its English translation, both with the slots filled in."""
    source, english = TEMPLATES[lang][intent][template]
    nom, dat, gen = NAMES[lang][name]
    # An account/card number is said as a plain cardinal; an amount agrees with its currency.
    is_id = any(marker in source for marker in NUMBER_MARKERS)
    num = number_words(number, lang) if is_id else amount_words(number, lang)
    text = source.format(num=num, name=nom, name_dat=dat, name_gen=gen)
    en_num = number_words(number, "en")
    return clean(text, lang), clean(english.format(num=en_num, name=EN_NAMES[name]), "en")


# ---- the plan: every utterance and sentence, before any synthesis ----------------------------

@dataclass
class Spoken:
    utt: str
    lang: str
    split: str
    kind: str                 # "number" or "phrase"
    speaker: str
    voice: str
    pitch: int
    rate: int
    number: int
    text: str
    text_en: str
    intent: str | None = None
    sample_rate: int = SAMPLE_RATE
    num_samples: int = 0      # filled in by synthesis
    path: Path | None = None  # filled in by synthesis


@dataclass
class Sentence:
    id: str
    lang: str
    split: str
    number: int
    text: str
    text_en: str | None = None


@dataclass
class Plan:
    size: str
    seed: int
    spoken: list[Spoken] = field(default_factory=list)
    text: list[Sentence] = field(default_factory=list)
    mt: list[Sentence] = field(default_factory=list)
    engine: str = ""          # how espeak-ng was run (filled in by synthesis)


def _speaker(rng: random.Random, lang: str, split: str) -> tuple[str, str, int, int]:
    voice = rng.choice(VOICES[split])
    pb, rb = rng.randrange(len(PITCH_BUCKETS)), rng.randrange(len(RATE_BUCKETS))
    pitch, rate = rng.randint(*PITCH_BUCKETS[pb]), rng.randint(*RATE_BUCKETS[rb])
    return f"{lang}-{voice}-p{pb}s{rb}", voice, pitch, rate


def make_plan(size: str = "tiny", seed: int = 0) -> Plan:
    """Every utterance and sentence of the corpus, with its text, speaker and split (no audio yet)."""
    if size not in SIZES:
        raise CorpusError(f"unknown size '{size}'; expected one of {', '.join(SIZES)}")
    check_templates()
    cfg = SIZES[size]
    if any(n % len(INTENTS) for n in cfg.phrases):
        raise CorpusError(f"size '{size}': phrase counts {cfg.phrases} must be multiples of {len(INTENTS)}")
    groups = number_groups(seed)
    plan = Plan(size, seed)
    for lang in SPEECH_LANGS:
        rng = random.Random(f"mini-{seed}-speech-{lang}")
        index = 0
        for split, count in zip(SPLITS, cfg.numbers if lang in TEMPLATES else cfg.numbers_extra):
            for _ in range(count):
                spk, voice, pitch, rate = _speaker(rng, lang, split)
                n = _pick_number(rng, groups[split])
                plan.spoken.append(Spoken(f"{spk}-n{index:06d}", lang, split, "number", spk, voice, pitch, rate,
                                          n, number_words(n, lang), number_words(n, "en")))
                index += 1
        if lang not in TEMPLATES:
            continue
        index = 0
        for split, count in zip(SPLITS, cfg.phrases):
            for k in range(count):
                spk, voice, pitch, rate = _speaker(rng, lang, split)
                intent = INTENTS[k % len(INTENTS)]
                n = _pick_number(rng, groups[split], minimum=2)
                text, text_en = render_phrase(lang, intent, rng.randrange(2), n, rng.randrange(len(EN_NAMES)))
                plan.spoken.append(Spoken(f"{spk}-i{index:06d}", lang, split, "phrase", spk, voice, pitch, rate,
                                          n, text, text_en, intent,
                                          8000 if lang == EIGHT_KHZ_LANG else SAMPLE_RATE))
                index += 1
    for lang in TEXT_LANGS:
        rng = random.Random(f"mini-{seed}-text-{lang}")
        ordinals = _has_ordinals(lang)
        index = 0
        for split, count in zip(SPLITS, cfg.text):
            for _ in range(count):
                n = _pick_number(rng, groups[split], minimum=2)
                kind = rng.randrange(3)
                if kind == 0 and lang in TEMPLATES:
                    text, _ = render_phrase(lang, rng.choice(INTENTS), rng.randrange(2), n, rng.randrange(len(EN_NAMES)))
                elif kind == 1 and ordinals:
                    text = _ordinal_or_cardinal(n, lang)
                else:
                    text = number_words(n, lang)
                plan.text.append(Sentence(f"{lang}-text-{index:06d}", lang, split, n, text))
                index += 1
    for lang in MT_LANGS:
        rng = random.Random(f"mini-{seed}-mt-{lang}")
        index = 0
        for split, count in zip(SPLITS, cfg.mt):
            for _ in range(count):
                n = _pick_number(rng, groups[split], minimum=2)
                if lang in TEMPLATES and rng.randrange(2) == 0:
                    text, text_en = render_phrase(lang, rng.choice(INTENTS), rng.randrange(2), n,
                                                  rng.randrange(len(EN_NAMES)))
                else:
                    text, text_en = number_words(n, lang), number_words(n, "en")
                plan.mt.append(Sentence(f"{lang}-mt-{index:06d}", lang, split, n, text, text_en))
                index += 1
    return plan


def _has_ordinals(lang: str) -> bool:
    try:
        return number_words(3, lang, ordinal=True) != number_words(3, lang)
    except Exception:  # num2words raises NotImplementedError (or worse) for languages without ordinals
        return False


def _ordinal_or_cardinal(n: int, lang: str) -> str:
    try:
        return number_words(n, lang, ordinal=True)
    except Exception:
        return number_words(n, lang)


# ---- synthesis -------------------------------------------------------------------------------

def espeak_voice(item: Spoken) -> str:
    return ESPEAK_VOICE[item.lang] + ("" if item.voice == "def" else f"+{item.voice}")


def espeak_args(item: Spoken) -> list[str]:
    return ["espeak-ng", "-v", espeak_voice(item), "-p", str(item.pitch), "-s", str(item.rate), "--stdout"]


def speak_with_program(item: Spoken) -> tuple[np.ndarray, int]:
    """One utterance through the espeak-ng program: (float32 samples, sample rate)."""
    import soundfile
    cmd = espeak_args(item)
    try:
        proc = subprocess.run(cmd, input=item.text.encode("utf-8"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, check=False)
    except FileNotFoundError:
        raise CorpusError("espeak-ng not found; install it (`make install`, or apt-get install espeak-ng)") from None
    if proc.returncode != 0 or not proc.stdout:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise CorpusError(f"utterance {item.utt}: '{' '.join(cmd)}' on '{item.text}' failed "
                          f"(exit {proc.returncode}){': ' + err if err else ''}")
    samples, rate = soundfile.read(io.BytesIO(proc.stdout), dtype="float32")
    return samples, rate


def store(item: Spoken, samples: np.ndarray, rate: int) -> None:
    """Resample to item.sample_rate and write item.path atomically as 16-bit wav; sets item.num_samples."""
    import soundfile
    import torch

    from mslam.data.audio import resample
    if samples.dtype == np.int16:
        samples = samples.astype(np.float32) / 32768.0
    wave = resample(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)), rate, item.sample_rate).numpy()
    pcm = np.clip(np.round(wave * 32767.0), -32768, 32767).astype(np.int16)
    if pcm.size < item.sample_rate // 10 or not np.abs(pcm).max() > 300:
        raise CorpusError(f"utterance {item.utt}: espeak-ng gave {pcm.size} samples of near silence for "
                          f"'{item.text}' (voice {espeak_voice(item)})")
    buf = io.BytesIO()
    soundfile.write(buf, pcm, item.sample_rate, subtype="PCM_16", format="WAV")
    atomic_write_bytes(item.path, buf.getvalue())
    item.num_samples = int(pcm.size)


CHUNK = 128   # utterances per fresh library process (the plan's order; independent of nj)


def choose_engine(engine: str = "auto") -> str:
    """"library" (libespeak-ng, ~5x faster) when it loads, else "program" (the espeak-ng executable)."""
    from mslam.data.mini.espeak import find_library
    if engine not in ("auto", "library", "program"):
        raise CorpusError(f"unknown espeak-ng engine '{engine}'; expected auto, library or program")
    if engine in ("auto", "library") and find_library() is not None:
        return "library"
    if engine == "library":
        raise CorpusError("libespeak-ng cannot be loaded; install espeak-ng (`make install`) or use engine 'program'")
    if shutil.which("espeak-ng") is None:
        raise CorpusError("espeak-ng not found; install it (`make install`, or apt-get install espeak-ng)")
    return "program"


def synthesize_all(items: list[Spoken], audio_dir: Path, nj: int = 2, progress: bool = False,
                   engine: str = "auto") -> str:
    """Speak every item into audio_dir/<lang>/<utt>.wav with `nj` workers; returns the engine used.

    "library": chunks of CHUNK utterances, each spoken by a fresh process through libespeak-ng
    (reproducible: a chunk always starts from the same engine state). "program": one espeak-ng
    process per utterance. The two engines give slightly different audio; each is deterministic.
    """
    from tqdm import tqdm
    engine = choose_engine(engine)
    for item in items:
        item.path = (audio_dir / item.lang / f"{item.utt}.wav").resolve()
    # Parallelism comes from the workers; torch's own intra-op threads would only fight over the
    # same cores (resampling one utterance takes ~1 ms on one thread).
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    bar = tqdm(total=len(items), desc="espeak-ng", unit="utt", disable=not progress, dynamic_ncols=True)
    try:
        if engine == "library":
            _synthesize_with_library(items, max(1, nj), bar)
        else:
            def run(item: Spoken) -> None:
                store(item, *speak_with_program(item))

            with ThreadPoolExecutor(max_workers=max(1, nj)) as pool:
                for _ in pool.map(run, items):
                    bar.update()
    finally:
        bar.close()
        torch.set_num_threads(threads)
    return engine


def _worker_env() -> dict[str, str]:
    import mslam
    env = dict(os.environ)
    root = str(Path(mslam.__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def speak_chunk_in_worker(library: str, chunk: list[Spoken], env: dict[str, str] | None = None) -> tuple[int, list[np.ndarray]]:
    """Speak a chunk in a fresh worker process (python -m mslam.data.mini.espeak): (rate, int16 arrays)."""
    import sys

    from mslam.data.mini.espeak import EspeakError, decode_chunk
    request = {"library": library, "jobs": [[it.text, espeak_voice(it), it.pitch, it.rate] for it in chunk]}
    proc = subprocess.run([sys.executable, "-m", "mslam.data.mini.espeak"], input=json.dumps(request).encode(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env or _worker_env(), check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise CorpusError(f"espeak-ng worker failed (exit {proc.returncode}) on the chunk starting at "
                          f"{chunk[0].utt}{': ' + err[-1] if err else ''}")
    try:
        rate, outputs = decode_chunk(proc.stdout, len(chunk))
    except (EspeakError, struct.error) as e:
        raise CorpusError(f"espeak-ng worker on the chunk starting at {chunk[0].utt}: {e}") from None
    return rate, [np.frombuffer(o, dtype="<i2") for o in outputs]


def _synthesize_with_library(items: list[Spoken], nj: int, bar) -> None:
    from mslam.data.mini.espeak import find_library
    library = find_library()
    env = _worker_env()
    chunks = [items[i:i + CHUNK] for i in range(0, len(items), CHUNK)]

    def run(chunk: list[Spoken]) -> None:
        rate, outputs = speak_chunk_in_worker(library, chunk, env)
        for item, samples in zip(chunk, outputs):
            store(item, samples, rate)
            bar.update()

    # Each thread waits on its worker process, then resamples and writes the chunk (torch and
    # the file writes release the GIL).
    with ThreadPoolExecutor(max_workers=nj) as pool:
        for _ in pool.map(run, chunks):
            pass


# ---- writing ---------------------------------------------------------------------------------

def _spoken_utterance(item: Spoken, *, text=False, translation=False, intent=False) -> Utterance:
    return Utterance(id=item.utt, wav=str(item.path), text=item.text if text else None, speaker=item.speaker,
                     lang=item.lang, intent=item.intent if intent else None,
                     translations={"en": item.text_en} if translation else None, num_samples=item.num_samples)


def _sentence_utterance(s: Sentence) -> Utterance:
    return Utterance(id=s.id, text=s.text, speaker=f"{s.lang}-{s.id.split('-')[1]}", lang=s.lang,
                     translations={"en": s.text_en} if s.text_en is not None else None)


def data_dir_members(plan: Plan) -> dict[str, list[tuple[str, Utterance]]]:
    """(split, utterance) pairs of every data dir."""
    out: dict[str, list[tuple[str, Utterance]]] = {name: [] for name in DATA_DIRS}
    for item in plan.spoken:
        out["speech"].append((item.split, _spoken_utterance(item)))
        if item.lang in ASR_LANGS:
            out["asr"].append((item.split, _spoken_utterance(item, text=True)))
        if item.lang in ST_LANGS:
            out["st"].append((item.split, _spoken_utterance(item, text=True, translation=True)))
        if item.kind == "phrase":
            out["intent"].append((item.split, _spoken_utterance(item, text=True, translation=True, intent=True)))
        else:
            out["langid"].append((item.split, _spoken_utterance(item)))
    out["text"] = [(s.split, _sentence_utterance(s)) for s in plan.text]
    out["mt"] = [(s.split, _sentence_utterance(s)) for s in plan.mt]
    return out


def _hours(items: list[Spoken]) -> float:
    return round(sum(i.num_samples / i.sample_rate for i in items) / 3600.0, 4)


def make_summary(plan: Plan) -> dict:
    """Utterances and hours per data dir, split and language; sentences per text language."""
    spoken_by_id = {i.utt: i for i in plan.spoken}
    dirs: dict[str, dict] = {}
    for name, members in data_dir_members(plan).items():
        dirs[name] = {}
        for split in SPLITS:
            utts = [u for s, u in members if s == split]
            entry: dict = {"utterances": len(utts)}
            spoken = [spoken_by_id[u.id] for u in utts if u.id in spoken_by_id]
            if spoken:
                entry["hours"] = _hours(spoken)
            langs: dict[str, dict] = {}
            for lang in sorted({u.lang for u in utts}):
                lang_utts = [u for u in utts if u.lang == lang]
                langs[lang] = {"utterances": len(lang_utts)}
                if spoken:
                    langs[lang]["hours"] = _hours([spoken_by_id[u.id] for u in lang_utts])
            entry["languages"] = langs
            if name == "intent":
                entry["intents"] = {i: sum(u.intent == i for u in utts) for i in INTENTS}
            dirs[name][split] = entry
    return {
        "size": plan.size,
        "seed": plan.seed,
        "espeak_engine": plan.engine,
        "sample_rate": SAMPLE_RATE,
        "languages": {
            "speech": list(SPEECH_LANGS), "text": list(TEXT_LANGS), "text_only": list(TEXT_ONLY_LANGS),
            "asr": list(ASR_LANGS), "st": list(ST_LANGS), "intent": list(INTENT_LANGS),
            "langid": list(SPEECH_LANGS), "mt": list(MT_LANGS), "eight_khz": EIGHT_KHZ_LANG,
            "scripts": {lang: SCRIPTS[lang] for lang in TEXT_LANGS},
        },
        "voices": {split: list(v) for split, v in VOICES.items()},
        "intents": list(INTENTS),
        "data_dirs": dirs,
        "hours_of_audio": _hours(plan.spoken),
        "text_sentences": {lang: {split: sum(s.lang == lang and s.split == split for s in plan.text) for split in SPLITS}
                           for lang in TEXT_LANGS},
    }


def format_summary(summary: dict) -> str:
    lines = [f"toy corpus: size {summary['size']}, seed {summary['seed']}, "
             f"{summary['hours_of_audio']:.2f} h of audio"]
    for name, splits in summary["data_dirs"].items():
        parts = []
        for split, e in splits.items():
            hours = f", {e['hours']:.2f} h" if "hours" in e else ""
            parts.append(f"{split} {e['utterances']}{hours}")
        langs = sorted(set().union(*(e["languages"] for e in splits.values())))
        lines.append(f"  {name:7s} {'; '.join(parts)}  [{len(langs)} languages: {' '.join(langs)}]")
    lines.append("  per language (speech train h / all-split utterances; text train sentences):")
    speech = summary["data_dirs"]["speech"]
    for lang in summary["languages"]["text"]:
        tr = speech["train"]["languages"].get(lang)
        n_utts = sum(speech[s]["languages"].get(lang, {}).get("utterances", 0) for s in SPLITS)
        spoken = f"{tr['hours']:.3f} h / {n_utts} utts" if tr else "no speech"
        lines.append(f"    {lang} ({summary['languages']['scripts'][lang]}): {spoken}; "
                     f"{summary['text_sentences'][lang]['train']} sentences")
    return "\n".join(lines)


def write_corpus(plan: Plan, out_dir: Path) -> dict:
    for name, members in data_dir_members(plan).items():
        for split in SPLITS:
            write_data_dir(out_dir / name / split, [u for s, u in members if s == split])
            DataDir(out_dir / name / split).validate()
    for split in SPLITS:
        for lang in TEXT_LANGS:
            lines = [s.text for s in plan.text if s.lang == lang and s.split == split]
            atomic_write_text(out_dir / "text_shards" / split / f"{lang}.txt", "".join(f"{t}\n" for t in lines))
    summary = make_summary(plan)
    # Written last: its presence says the corpus is complete.
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    return summary


def generate(out_dir: str | os.PathLike, size: str = "tiny", seed: int = 0, nj: int = 2,
             progress: bool = False, verbose: bool = False, engine: str = "auto") -> dict:
    """Build the toy corpus under `out_dir` (what it owned there before is replaced); returns the summary.

    Deterministic: the same (size, seed) gives the same bytes, whatever `nj` (wav.scp holds the
    absolute paths of the audio, so it differs only by `out_dir`).
    """
    t0 = time.time()
    out = Path(out_dir).resolve()
    plan = make_plan(size, seed)
    out.mkdir(parents=True, exist_ok=True)
    for name in OWNED:
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    if verbose:
        print(f"make_mini_corpus: {len(plan.spoken)} utterances to speak in {len(SPEECH_LANGS)} languages, "
              f"{len(plan.text)} text sentences in {len(TEXT_LANGS)} languages, {len(plan.mt)} X->En pairs "
              f"(size {size}, seed {seed}, {nj} jobs)", flush=True)
    plan.engine = synthesize_all(plan.spoken, out / "audio", nj=nj, progress=progress, engine=engine)
    summary = write_corpus(plan, out)
    if verbose:
        print(format_summary(summary))
        print(f"make_mini_corpus: wrote {out} in {time.time() - t0:.1f} s", flush=True)
    return summary
