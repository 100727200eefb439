"""Character vocabulary (coverage, temperature, file format) and the SentencePiece wrapper."""
from __future__ import annotations

import pytest

from mslam.data.kaldi import DataDirError
from mslam.data.tokenizer import (MASK_ID, PAD_ID, SPECIALS, UNK_ID, CharTokenizer, SubwordTokenizer,
                                  normalize_text, temperature_weights)

TEXTS = {
    "de": ["zweiundvierzig", "dreihundertsiebzehn Grüße", "fünfzig Straße"] * 20,
    "ru": ["сорок два", "триста семнадцать"] * 5,
    "fr": ["quarante-deux", "garçon élève"],
}


def test_normalization_is_nfkc_and_collapses_spaces():
    assert normalize_text("ﬁve\u00a0 \t cafe\u0301 ") == "five café"
    assert normalize_text("Ab C", lowercase=True) == "ab c"


def test_temperature_weights_follow_the_formula():
    w = temperature_weights({"a": 900, "b": 100}, temperature=3.0)
    expected_a = 0.9 ** (1 / 3) / (0.9 ** (1 / 3) + 0.1 ** (1 / 3))
    assert w["a"] == pytest.approx(expected_a)
    assert temperature_weights({"a": 900, "b": 100}, 1.0)["a"] == pytest.approx(0.9)
    assert temperature_weights({"a": 900, "b": 100}, 1e9)["a"] == pytest.approx(0.5, abs=1e-6)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        temperature_weights({"a": 1}, 0)


def test_build_covers_every_language_and_respects_size():
    tok = CharTokenizer.build(TEXTS, max_size=4096)
    assert tuple(tok.symbols[:6]) == SPECIALS and tok.symbols[6] == "<space>"
    every_char = {c for texts in TEXTS.values() for t in texts for c in t if c != " "}
    assert every_char <= set(tok.symbols)
    ids = tok.encode("сорок два")
    assert UNK_ID not in ids and tok.decode(ids) == "сорок два"
    # a tight budget keeps the characters of the rare language's core before the frequent
    # language's rarest ones (temperature sampling favours small languages)
    small = CharTokenizer.build(TEXTS, max_size=6 + 1 + 20, coverage=0.9)
    assert len(small) == 27
    from collections import Counter
    for lang, texts in TEXTS.items():
        top = [c for c, _ in Counter("".join(texts).replace(" ", "")).most_common(5)]
        assert set(top) <= set(small.symbols), lang


def test_save_load_roundtrip_and_errors(tmp_path):
    tok = CharTokenizer.build(TEXTS)
    tok.save(tmp_path / "chars.txt")
    again = CharTokenizer.load(tmp_path / "chars.txt")
    assert again.symbols == tok.symbols
    assert (tmp_path / "chars.txt").read_text().splitlines()[:4] == ["<blank>", "<pad>", "<unk>", "<mask>"]
    (tmp_path / "bad.txt").write_text("<blank>\n<pad>\n<unk>\n<mask>\n<s>\n</s>\na\na\n")
    with pytest.raises(DataDirError, match="'a' twice"):
        CharTokenizer.load(tmp_path / "bad.txt")
    (tmp_path / "bad2.txt").write_text("a\nb\n")
    with pytest.raises(DataDirError, match="must start with <blank>"):
        CharTokenizer.load(tmp_path / "bad2.txt")


def test_unknown_characters():
    tok = CharTokenizer.build({"de": ["abc"]})
    assert tok.encode("abx") == [tok.index["a"], tok.index["b"], UNK_ID]
    with pytest.raises(ValueError, match=r"utterance 'u3': character\(s\) \['x', 'y'\] not in the vocabulary"):
        tok.encode("ayx", utt="u3", strict=True)
    assert PAD_ID == 1 and MASK_ID == 3


def test_sentencepiece_roundtrip(tmp_path):
    sentences = [f"{a} {b}" for a in ("one", "two", "forty", "three hundred") for b in ("euros", "cards", "apples")] * 5
    sp = SubwordTokenizer.train(sentences, tmp_path / "sp" / "en", vocab_size=40)
    assert (tmp_path / "sp" / "en.model").is_file() and len(sp) <= 40
    ids = sp.encode("forty two euros")
    assert ids and all(i >= 0 for i in ids)
    assert sp.decode(sp.encode("three hundred apples")) == "three hundred apples"
    assert len(SubwordTokenizer(tmp_path / "sp" / "en.model")) == len(sp)
    with pytest.raises(ValueError, match="no training sentences"):
        SubwordTokenizer.train(["  "], tmp_path / "x", vocab_size=10)
