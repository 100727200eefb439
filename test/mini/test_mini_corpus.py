"""The toy corpus generator (mslam.data.mini_corpus) on its tiny size."""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile

from mslam.data import mini_corpus as mc
from mslam.data.audio import load_audio
from mslam.data.kaldi import DataDir, kaldi_sort_key
from mslam.data.mini.templates import INTENTS, TEMPLATES

TINY = mc.SIZES["tiny"]
SPLIT_INDEX = {s: i for i, s in enumerate(mc.SPLITS)}
SPOKEN_DIRS = ("speech", "asr", "st", "intent", "langid")


def data_dir(root: Path, name: str, split: str) -> DataDir:
    return DataDir(root / name / split)


def numbers_per_lang(lang: str, split: str) -> int:
    sizes = TINY.numbers if lang in TEMPLATES else TINY.numbers_extra
    return sizes[SPLIT_INDEX[split]]


def test_every_data_dir_is_valid_with_its_tables(mini_corpus):
    expected = {
        "speech": {"wav.scp", "utt2spk", "utt2lang", "utt2num_samples"},
        "asr": {"wav.scp", "text", "utt2spk", "utt2lang", "utt2num_samples"},
        "st": {"wav.scp", "text", "text.en", "utt2spk", "utt2lang", "utt2num_samples"},
        "intent": {"wav.scp", "text", "text.en", "utt2intent", "utt2spk", "utt2lang", "utt2num_samples"},
        "langid": {"wav.scp", "utt2spk", "utt2lang", "utt2num_samples"},
        "text": {"text", "utt2spk", "utt2lang"},
        "mt": {"text", "text.en", "utt2spk", "utt2lang"},
    }
    for name, tables in expected.items():
        for split in mc.SPLITS:
            d = data_dir(mini_corpus, name, split).validate()
            assert set(d.tables) == tables, (name, split)
            assert (d.path / "spk2utt").is_file()
            assert len(d) > 0


def test_counts_per_language_intent_and_split(mini_corpus):
    for split in mc.SPLITS:
        i = SPLIT_INDEX[split]
        langid = Counter(data_dir(mini_corpus, "langid", split).tables["utt2lang"].values())
        assert langid == {lang: numbers_per_lang(lang, split) for lang in mc.SPEECH_LANGS}
        intent = data_dir(mini_corpus, "intent", split)
        assert Counter(intent.tables["utt2lang"].values()) == {lang: TINY.phrases[i] for lang in mc.INTENT_LANGS}
        per_lang_intent = Counter((intent.tables["utt2lang"][u], intent.tables["utt2intent"][u]) for u in intent.utt_ids)
        assert per_lang_intent == {(lang, it): TINY.phrases[i] // len(INTENTS)
                                   for lang in mc.INTENT_LANGS for it in INTENTS}
        speech = Counter(data_dir(mini_corpus, "speech", split).tables["utt2lang"].values())
        for lang in mc.SPEECH_LANGS:
            assert speech[lang] == numbers_per_lang(lang, split) + (TINY.phrases[i] if lang in TEMPLATES else 0)
        asr = Counter(data_dir(mini_corpus, "asr", split).tables["utt2lang"].values())
        assert asr == {lang: speech[lang] for lang in mc.ASR_LANGS}
        st = Counter(data_dir(mini_corpus, "st", split).tables["utt2lang"].values())
        assert st == {lang: speech[lang] for lang in mc.ST_LANGS}
        text = Counter(data_dir(mini_corpus, "text", split).tables["utt2lang"].values())
        assert text == {lang: TINY.text[i] for lang in mc.TEXT_LANGS}
        mt = Counter(data_dir(mini_corpus, "mt", split).tables["utt2lang"].values())
        assert mt == {lang: TINY.mt[i] for lang in mc.MT_LANGS}


def test_languages_scripts_and_text_only_languages():
    assert len(mc.SPEECH_LANGS) >= 12
    assert {mc.SCRIPTS[lang] for lang in mc.SPEECH_LANGS} >= {"Latin", "Cyrillic", "Arabic"}
    assert set(mc.TEXT_LANGS) > set(mc.SPEECH_LANGS)
    assert mc.TEXT_ONLY_LANGS and not set(mc.TEXT_ONLY_LANGS) & set(mc.SPEECH_LANGS)
    assert set(mc.ASR_LANGS) < set(mc.SPEECH_LANGS) and "en" not in mc.ST_LANGS
    assert len(mc.INTENT_LANGS) >= 6 and len(INTENTS) >= 6
    assert set(mc.INTENT_LANGS) <= set(mc.SPEECH_LANGS) and mc.EIGHT_KHZ_LANG in mc.INTENT_LANGS


def test_audio_is_speech_of_plausible_length(mini_corpus):
    for split in mc.SPLITS:
        d = data_dir(mini_corpus, "speech", split)
        for utt in d:
            samples, rate = soundfile.read(utt.wav, dtype="float32")
            assert samples.ndim == 1 and len(samples) == utt.num_samples, utt.id
            assert soundfile.info(utt.wav).subtype == "PCM_16"
            rms = float(np.sqrt(np.mean(samples ** 2)))
            frames = samples[:len(samples) // (rate // 50) * (rate // 50)].reshape(-1, rate // 50)
            loudest = float(np.sqrt((frames ** 2).mean(axis=1)).max())   # 20 ms frames
            assert rms > 0.004 and loudest > 0.015, (utt.id, rms, loudest)   # silence: 0
            assert 0.3 <= len(samples) / rate <= 10.0, (utt.id, len(samples) / rate)
            assert Path(utt.wav).is_absolute() and Path(utt.wav).is_relative_to(mini_corpus / "audio")


def test_eight_khz_language_is_stored_at_8k_and_loads_at_16k(mini_corpus):
    d = data_dir(mini_corpus, "intent", "test")
    rates = {}
    for utt in d:
        rates.setdefault(utt.lang, set()).add(soundfile.info(utt.wav).samplerate)
    assert rates.pop(mc.EIGHT_KHZ_LANG) == {8000}
    assert all(r == {16000} for r in rates.values())
    utt = next(u for u in d if u.lang == mc.EIGHT_KHZ_LANG)
    wave = load_audio(utt.wav, utt=utt.id)
    assert abs(wave.numel() - 2 * utt.num_samples) <= 2
    # The other data dirs share the same 8 kHz files for that language's phrases.
    st = data_dir(mini_corpus, "st", "test")
    assert st.tables["wav.scp"][utt.id] == utt.wav


def test_ids_are_prefixed_by_speaker_and_speakers_name_language_voice_bucket(mini_corpus):
    for name in SPOKEN_DIRS + ("text", "mt"):
        for split in mc.SPLITS:
            d = data_dir(mini_corpus, name, split)
            ids = d.utt_ids
            assert ids == sorted(ids, key=kaldi_sort_key) and len(set(ids)) == len(ids)
            for utt, spk in d.tables["utt2spk"].items():
                assert utt.startswith(spk + "-"), (utt, spk)
                assert spk.split("-")[0] == d.tables["utt2lang"][utt]
    spk = next(iter(data_dir(mini_corpus, "speech", "train").tables["utt2spk"].values()))
    lang, voice, bucket = spk.split("-")
    assert voice in mc.VOICES["train"] and len(bucket) == 4


def test_speakers_are_held_out(mini_corpus):
    for name in SPOKEN_DIRS:
        speakers = {s: set(data_dir(mini_corpus, name, s).tables["utt2spk"].values()) for s in mc.SPLITS}
        assert not speakers["train"] & speakers["dev"] and not speakers["train"] & speakers["test"]
        assert not speakers["dev"] & speakers["test"]
        for split, spks in speakers.items():
            assert {s.split("-")[1] for s in spks} <= set(mc.VOICES[split]), (name, split)
    assert not set(mc.VOICES["train"]) & (set(mc.VOICES["test"]) | set(mc.VOICES["dev"]))
    assert {"m4", "f4", "m7"} <= set(mc.VOICES["test"])


def test_numbers_are_held_out(mini_corpus):
    groups = mc.number_groups(0)
    flat = {s: set().union(*map(set, groups[s])) for s in mc.SPLITS}
    assert not flat["train"] & flat["dev"] and not flat["train"] & flat["test"] and not flat["dev"] & flat["test"]
    assert flat["train"] | flat["dev"] | flat["test"] == set(range(10000))
    plan = mc.make_plan("tiny", 0)
    for item in plan.spoken + plan.text + plan.mt:
        assert item.number in flat[item.split], item
    # On disk: the English words of a spoken number identify it; no dev/test number is in train.
    st = {s: data_dir(mini_corpus, "st", s) for s in mc.SPLITS}
    en = {s: {v for u, v in d.tables["text.en"].items() if "-n" in u} for s, d in st.items()}
    assert en["train"] and en["test"] and not en["train"] & (en["dev"] | en["test"])


def test_intent_phrases_carry_slots_and_translations(mini_corpus):
    d = data_dir(mini_corpus, "intent", "train")
    for utt in d:
        assert "{" not in utt.text and "{" not in utt.translations["en"]
        if utt.lang == "en":
            assert utt.text == utt.translations["en"]
    text, en = mc.render_phrase("es", "transfer", 0, 21, 2)
    assert (text, en) == ("transfiere veintiún euros a Pedro", "transfer twenty one euros to Peter")
    text, en = mc.render_phrase("de", "lost_card", 1, 101, 0)
    assert (text, en) == ("meine Karte Nummer einhunderteins wurde gestohlen",
                          "my card number one hundred and one was stolen")
    assert mc.render_phrase("de", "transfer", 0, 101, 0)[0] == "überweise einhundertein Euro an Anna"
    assert mc.render_phrase("ru", "transfer", 0, 42, 0)[0] == "переведи сорок два евро Анне"


def test_intent_is_told_by_words_not_by_length():
    """A classifier on the phrase length alone stays near chance (the labels need the words)."""
    import random
    rng = random.Random(0)
    for lang in mc.INTENT_LANGS:
        samples = [(len(mc.render_phrase(lang, it, rng.randrange(2), rng.randrange(2, 10000), rng.randrange(6))[0]), it)
                   for it in INTENTS for _ in range(60)]
        centroid = {it: np.mean([n for n, i in samples if i == it]) for it in INTENTS}
        correct = sum(min(INTENTS, key=lambda it: abs(centroid[it] - n)) == it for n, it in samples)
        assert correct / len(samples) < 0.45, (lang, correct / len(samples))


def test_text_corpus_and_shards(mini_corpus):
    for split in mc.SPLITS:
        d = data_dir(mini_corpus, "text", split)
        for lang in mc.TEXT_LANGS:
            lines = (mini_corpus / "text_shards" / split / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
            texts = [d.tables["text"][u] for u in d.utt_ids if d.tables["utt2lang"][u] == lang]
            assert lines == texts and all(t.strip() for t in lines)
    # Text-only languages are written in their own scripts.
    ko = (mini_corpus / "text_shards" / "train" / "ko.txt").read_text(encoding="utf-8")
    assert any("\uac00" <= c <= "\ud7a3" for c in ko)
    mt = data_dir(mini_corpus, "mt", "test")
    assert set(mt.tables["utt2lang"].values()) == set(mc.MT_LANGS)
    assert all(v.isascii() for v in mt.tables["text.en"].values())


def test_summary(mini_corpus):
    summary = json.loads((mini_corpus / "summary.json").read_text(encoding="utf-8"))
    assert summary["size"] == "tiny" and summary["seed"] == 0
    for name, splits in summary["data_dirs"].items():
        for split, entry in splits.items():
            assert entry["utterances"] == len(data_dir(mini_corpus, name, split))
            if name in SPOKEN_DIRS:
                assert entry["hours"] > 0
    assert summary["data_dirs"]["intent"]["test"]["intents"] == {it: len(mc.INTENT_LANGS) for it in INTENTS}
    assert summary["text_sentences"]["ja"] == {"train": TINY.text[0], "dev": TINY.text[1], "test": TINY.text[2]}
    assert "/" not in json.dumps(summary)  # no paths of this machine


def _hashes(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if p.name == "wav.scp":
                data = data.replace(str(root).encode(), b"ROOT")
            out[str(p.relative_to(root))] = hashlib.sha256(data).hexdigest()
    return out


def test_deterministic_for_a_seed_whatever_nj_and_replaces_an_older_corpus(mini_corpus, tmp_path):
    again = tmp_path / "again"
    (again / "audio" / "xx").mkdir(parents=True)
    (again / "audio" / "xx" / "stale.wav").write_bytes(b"old")
    (again / "intent" / "train").mkdir(parents=True)
    (again / "intent" / "train" / "utt2dur").write_text("x 1.0\n")
    (again / "notes.txt").write_text("not the generator's")
    mc.generate(again, size="tiny", seed=0, nj=1)
    assert (again / "notes.txt").read_text() == "not the generator's"
    (again / "notes.txt").unlink()
    assert _hashes(again) == _hashes(mini_corpus)


def test_another_seed_gives_another_corpus():
    a, b = mc.make_plan("tiny", 0), mc.make_plan("tiny", 1)
    assert [(i.utt, i.text) for i in a.spoken] != [(i.utt, i.text) for i in b.spoken]
    assert [s.text for s in a.text] != [s.text for s in b.text]
    assert mc.number_groups(0) != mc.number_groups(1)
    item = b.spoken[0]
    assert [(i.utt, i.text, i.pitch, i.rate) for i in mc.make_plan("tiny", 1).spoken] == \
        [(i.utt, i.text, i.pitch, i.rate) for i in b.spoken]
    assert item.utt.startswith(item.speaker + "-n")


def test_unknown_size_engine_and_missing_espeak(tmp_path, monkeypatch):
    with pytest.raises(mc.CorpusError, match="unknown size"):
        mc.make_plan("huge")
    with pytest.raises(mc.CorpusError, match="unknown espeak-ng engine"):
        mc.choose_engine("festival")
    monkeypatch.setenv("PATH", str(tmp_path))
    plan = mc.make_plan("tiny", 0)
    with pytest.raises(mc.CorpusError, match="espeak-ng not found"):
        mc.synthesize_all(plan.spoken[:1], tmp_path / "audio", engine="program")


def test_both_engines_speak_the_same_utterances(tmp_path):
    from mslam.data.mini.espeak import find_library
    items = [i for i in mc.make_plan("tiny", 0).spoken if i.lang in ("de", "ru", "ar")][::4]
    durations = {}
    for engine in ("program", "library"):
        if engine == "library" and find_library() is None:
            pytest.skip("libespeak-ng cannot be loaded here")
        assert mc.synthesize_all(items, tmp_path / engine, nj=2, engine=engine) == engine
        for item in items:
            samples, rate = soundfile.read(item.path, dtype="float32")
            assert rate == item.sample_rate and len(samples) == item.num_samples
            durations.setdefault(item.utt, []).append(len(samples) / rate)
    for utt, (a, b) in durations.items():
        assert abs(a - b) < 0.6 * max(a, b), (utt, a, b)   # the same words, about as long


def test_worker_chunk_encoding_round_trips():
    from mslam.data.mini.espeak import EspeakError, decode_chunk, encode_chunk
    outputs = [b"\x01\x00\x02\x00", b"", b"\xff\x7f"]
    assert decode_chunk(encode_chunk(22050, outputs), 3) == (22050, outputs)
    with pytest.raises(EspeakError):
        decode_chunk(encode_chunk(22050, outputs) + b"\x00", 3)
