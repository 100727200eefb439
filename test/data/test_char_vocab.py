"""build_char_vocab counts characters as the texts stream by (one pass, no text kept) and gives the
vocabulary it gave when it held every text: the expected lists below were written by that version."""
from __future__ import annotations

from pathlib import Path

import pytest

from mslam.bin.build_char_vocab import main as build_char_vocab
from mslam.data.tokenizer import SPECIALS

SHARDS = {
    "de": ["Die Straße ist nass.", "Grüße aus Köln!", "Übermorgen fahren wir ab.", "", "Das Öl kostet 5 €."],
    "ru": ["Привет, мир.", "Жёлтый дом стоит там.", "Щука плывёт.", "Съешь же ещё этих булок."],
    "ar": ["مرحبا بالعالم.", "الكتاب على الطاولة."],
    "zh": ["今天天气很好。", "我们去公园吧！"],
}
DIR = {"u1": ("fr", "Ça va très bien, merci."), "u2": ("fr", "Où est la gare?"), "u3": ("de", "Fuß und Maß."),
       "u4": ("el", "Καλημέρα σας."), "u5": ("fr", " ")}


def write_inputs(root: Path) -> tuple[Path, Path]:
    shards, data = root / "shards", root / "data"
    shards.mkdir(parents=True)
    data.mkdir(parents=True)
    for lang, lines in SHARDS.items():
        (shards / f"{lang}.txt").write_text("".join(s + "\n" for s in lines), encoding="utf-8")
    (data / "text").write_text("".join(f"{u} {t}\n" for u, (_, t) in sorted(DIR.items())), encoding="utf-8")
    (data / "utt2lang").write_text("".join(f"{u} {lang}\n" for u, (lang, _) in sorted(DIR.items())), encoding="utf-8")
    (data / "wav.scp").write_text("".join(f"{u} {u}.wav\n" for u in sorted(DIR)), encoding="utf-8")
    (data / "utt2spk").write_text("".join(f"{u} {u}\n" for u in sorted(DIR)), encoding="utf-8")
    (data / "spk2utt").write_text("".join(f"{u} {u}\n" for u in sorted(DIR)), encoding="utf-8")
    return shards, data


# (options, the symbols after the specials and <space>) as the version that held every text wrote them
EXPECTED = [
    (["--max-size", "40", "--coverage", "0.9"],
     "ا a т 天 α ل e . ! ب r е 。 Κ s и 今 i έ ع n л 们 η م м 公 t λ ة о 去 ,"),
    (["--lowercase", "--foreign", "drop", "--max-size", "30"],
     "ا a т 天 α ل e . ! ب s е 。 r έ и 今 i η ع n л 们"),
    ([], "ا a т 天 α ل e . ! ب r е 。 Κ s и 今 i έ ع n л 们 η م м 公 t λ ة о 去 , μ ت ß ё 吧 ρ ح а 园 ? ς ر u в 好 O σ "
         "ط D к 很 b ك р 我 c و l у 气 g ى o ы m 5 Ж F П v G С Ç K Щ è M б ù S д d ж f й п h с k х ш w щ Ö ъ Ü ь ö э "
         "ü €"),
]


@pytest.mark.parametrize("options, expected", EXPECTED)
def test_streaming_vocabulary_equals_the_one_built_from_all_texts(tmp_path, capsys, options, expected):
    shards, data = write_inputs(tmp_path)
    out = tmp_path / "chars.txt"
    assert build_char_vocab(["--text-shards", str(shards), "--data-dirs", str(data), "--out", str(out),
                             "--no-progress", *options]) == 0
    symbols = out.read_text(encoding="utf-8").splitlines()
    assert symbols[:len(SPECIALS) + 1] == [*SPECIALS, "<space>"]
    assert symbols[len(SPECIALS) + 1:] == expected.split()
    assert "(105 distinct characters seen in 6 languages, 16 texts)" in capsys.readouterr().out


def test_an_empty_shard_dir_is_named(tmp_path, capsys):
    shards, _ = write_inputs(tmp_path)
    (tmp_path / "empty").mkdir()
    assert build_char_vocab(["--text-shards", str(shards), str(tmp_path / "empty"), "--out",
                             str(tmp_path / "v.txt")]) == 1
    assert f"{tmp_path / 'empty'}: no text shards" in capsys.readouterr().err
