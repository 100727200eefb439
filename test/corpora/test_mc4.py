"""mC4 preparation: the download list against the fixture tree, the text shards against the fixture's
JSON lines, the cleaning rules on shards of our own, reruns, parallel runs and bad shards."""
from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

import mslam.data.corpora.mc4 as mc4
from mslam.bin.prepare_mc4 import main
from mslam.data.corpora.common import Part
from mslam.data.corpora.mc4 import cut_long, paper_languages, read_shard_table, split_sentences
from mslam.data.manifest import text_manifest

SHARDS = "multilingual"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main([*argv])
    out, err = capsys.readouterr()
    return rc, out, err


def mc4_manifest(fixture_tree: Path) -> dict:
    return json.loads((fixture_tree / "MANIFEST.json").read_text(encoding="utf-8"))["corpora"]["mc4"]


@pytest.fixture
def root(fixture_tree, tmp_path) -> Path:
    """The fixture's mC4 download, as a recipe's download stage leaves it."""
    shutil.copytree(fixture_tree / "mc4", tmp_path / "mc4")
    return tmp_path / "mc4"


def write_shard(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)
    return path


def doc(text: str) -> str:
    return json.dumps({"text": text, "timestamp": "2020-01-01T00:00:00Z", "url": "https://example.org/"},
                      ensure_ascii=False)


def fixture_texts(root: Path, lang: str, split: str) -> list[str]:
    suffix = "" if split == "train" else "-validation"
    [shard] = (root / SHARDS).glob(f"c4-{lang}{suffix}.tfrecord-*.json.gz")
    with gzip.open(shard, "rt", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def expected_shards(root: Path, lang: str, min_chars: int) -> dict[str, list[str]]:
    """The fixture's documents are short toy sentences, one per line, each ending in its only full stop:
    by the rules each line is one sentence, NFKC'd, dropped when short or already seen (train first)."""
    seen: set[str] = set()
    out = {}
    for split in ("train", "dev"):
        kept = []
        for text in fixture_texts(root, lang, split):
            for line in text.split("\n"):
                sentence = " ".join(unicodedata.normalize("NFKC", line).split())
                assert sentence.count(".") == 1 and sentence.endswith("."), sentence
                if len(sentence) >= min_chars and sentence not in seen:
                    seen.add(sentence)
                    kept.append(sentence)
        out[split] = kept
    return out


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


# ---- the download list ---------------------------------------------------------------------------

def test_shard_table_is_complete_and_agrees_with_the_fixture():
    table = read_shard_table()
    assert len(table) == 108
    assert len(paper_languages()) == 101 and "und" not in paper_languages()
    romanized = {lang for lang in table if lang.endswith("-Latn")}
    assert romanized == {f"{x}-Latn" for x in ("bg", "el", "hi", "ja", "ru", "zh")}
    assert table["en"] == (11264, 128) and table["af"] == (64, 1) and table["iw"] == (1024, 1)
    # the shard totals the fixture archives are named with
    assert table["de"] == (2048, 16) and table["ru"] == (4096, 32) and table["ar"] == (1024, 4)


def test_files_lists_the_fixture_files(fixture_tree, capsys):
    mc4 = mc4_manifest(fixture_tree)
    rc, out, _ = run(capsys, "files", "--langs", ",".join(mc4["languages"]))
    assert rc == 0
    assert sorted(out.split()) == sorted(mc4["files"])
    for rel in out.split():
        assert (fixture_tree / "mc4" / rel).is_file()


def test_files_selection(capsys):
    rc, out, _ = run(capsys, "files", "--langs", "haw,de", "--shards", "3", "--validation-shards", "2")
    assert rc == 0
    assert out.split() == [
        "multilingual/c4-haw.tfrecord-00000-of-00002.json.gz",      # haw has only 2 train shards
        "multilingual/c4-haw.tfrecord-00001-of-00002.json.gz",
        "multilingual/c4-haw-validation.tfrecord-00000-of-00001.json.gz",
        "multilingual/c4-de.tfrecord-00000-of-02048.json.gz",
        "multilingual/c4-de.tfrecord-00001-of-02048.json.gz",
        "multilingual/c4-de.tfrecord-00002-of-02048.json.gz",
        "multilingual/c4-de-validation.tfrecord-00000-of-00016.json.gz",
        "multilingual/c4-de-validation.tfrecord-00001-of-00016.json.gz",
    ]
    rc, out, _ = run(capsys, "files")
    assert len(out.split()) == 2 * 101
    rc, out, err = run(capsys, "files", "--langs", "de,he")
    assert rc == 1 and out == ""
    assert err.startswith("prepare_mc4: unknown mC4 language(s) he;") and " iw " in err


# ---- text shards from the fixture ----------------------------------------------------------------

@pytest.mark.parametrize("min_chars", [1, 20])
def test_prepare_matches_the_fixture_documents(root, fixture_tree, tmp_path, capsys, min_chars):
    mc4 = mc4_manifest(fixture_tree)
    out = tmp_path / "text"
    rc, stdout, err = run(capsys, "prepare", "--root", str(root), "--out", str(out), "--min-chars", str(min_chars),
                          "--no-progress")
    assert rc == 0, err
    assert "3 of 3 languages made" in stdout
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    for lang in mc4["languages"]:   # the summary: documents, sentences and characters kept and dropped
        train, dev = stats[lang]["train"], stats[lang]["dev"]
        assert (f"prepare_mc4: {lang}: train: kept {train['documents_kept']} of {train['documents']} documents, "
                f"{train['sentences']} sentences ({train['characters']} chars); dropped {train['dropped']['short']} "
                f"short < {min_chars} ({train['dropped_characters']['short']} chars), "
                f"{train['dropped']['duplicate']} duplicate ({train['dropped_characters']['duplicate']} chars) | "
                f"dev: kept {dev['documents_kept']} of") in stdout
    assert sorted(stats) == sorted(mc4["languages"])
    for lang in mc4["languages"]:
        expected = expected_shards(root, lang, min_chars)
        for split, mc4_split in (("train", "train"), ("dev", "validation")):
            assert read_lines(out / split / f"{lang}.txt") == expected[split]
            s = stats[lang][split]
            assert s["documents"] == mc4["documents"][f"{lang}/{mc4_split}"]
            assert s["sentences"] == len(expected[split])
            assert s["characters"] == sum(map(len, expected[split]))
            lines = sum(len(t.split("\n")) for t in fixture_texts(root, lang, split))
            assert s["sentences"] + s["dropped"]["short"] + s["dropped"]["duplicate"] == lines
    # The shards feed the text manifest and the character vocabulary.
    records = text_manifest(out / "train")
    assert {r.lang for r in records} == set(mc4["languages"])
    assert [r.text for r in records if r.lang == "ru"] == read_lines(out / "train" / "ru.txt")
    if min_chars == 1:
        from mslam.bin.build_char_vocab import main as build_char_vocab
        assert build_char_vocab(["--text-shards", str(out / "train"), "--out", str(tmp_path / "vocab.txt")]) == 0
        vocab = set(read_lines(tmp_path / "vocab.txt"))
        assert {"ß", "ж", "ب", "<space>"} <= vocab


def test_rerun_does_nothing_and_options_redo(root, tmp_path, capsys):
    out = tmp_path / "text"
    args = ["prepare", "--root", str(root), "--out", str(out), "--no-progress"]
    assert run(capsys, *args)[0] == 0
    files = sorted(p for p in out.rglob("*") if p.is_file())
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files}
    rc, stdout, _ = run(capsys, *args)
    assert rc == 0 and "0 of 3 languages made" in stdout and stdout.count("(up to date)") == 3
    assert sorted(p for p in out.rglob("*") if p.is_file()) == files
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files} == before
    # Another option redoes the requested language only; a damaged output is redone.
    rc, stdout, _ = run(capsys, *args, "--langs", "de", "--min-chars", "1")
    assert rc == 0 and "1 of 1 languages made" in stdout
    assert (out / "train" / "ar.txt").stat().st_mtime_ns == before[out / "train" / "ar.txt"][0]
    (out / "dev" / "ru.txt").write_text("truncated", encoding="utf-8")
    rc, stdout, _ = run(capsys, *args, "--langs", "ru,ar")
    assert rc == 0 and "1 of 2 languages made" in stdout
    assert (out / "dev" / "ru.txt").read_bytes() == before[out / "dev" / "ru.txt"][1]


def test_parallel_run_gives_the_same_shards(root, tmp_path, capsys):
    for nj, name in (("1", "serial"), ("2", "parallel")):
        assert run(capsys, "prepare", "--root", str(root), "--out", str(tmp_path / name), "--nj", nj,
                   "--min-chars", "1", "--no-progress")[0] == 0
    for split in ("train", "dev"):
        for shard in (tmp_path / "serial" / split).iterdir():
            assert (tmp_path / "parallel" / split / shard.name).read_bytes() == shard.read_bytes()
    serial = json.loads((tmp_path / "serial" / "stats.json").read_text(encoding="utf-8"))
    assert json.loads((tmp_path / "parallel" / "stats.json").read_text(encoding="utf-8")) == serial


def test_max_sentences_per_language(root, tmp_path, capsys):
    out = tmp_path / "text"
    assert run(capsys, "prepare", "--root", str(root), "--out", str(out), "--langs", "ru", "--min-chars", "1",
               "--max-sentences-per-lang", "3", "--no-progress")[0] == 0
    assert read_lines(out / "train" / "ru.txt") == expected_shards(root, "ru", 1)["train"][:3]
    assert len(read_lines(out / "dev" / "ru.txt")) == 3


# ---- cleaning rules on shards of our own ---------------------------------------------------------

def test_sentence_splitting_and_cutting():
    assert split_sentences('Er sagte "Ja." Dann ging er! Warum? Ok') == ['Er sagte "Ja."', "Dann ging er!", "Warum?",
                                                                         "Ok"]
    assert split_sentences("Am 1. Januar kam z. B. Anna. Gut.") == ["Am 1. Januar kam z. B. Anna.", "Gut."]
    assert split_sentences("Version 3.14 ist da.Wirklich") == ["Version 3.14 ist da.Wirklich"]
    assert split_sentences("今天很好。我们走吧。") == ["今天很好。", "我们走吧。"]
    assert split_sentences("क्या हाल है। ठीक है।") == ["क्या हाल है।", "ठीक है।"]
    assert split_sentences("هل أنت بخير؟ نعم") == ["هل أنت بخير؟", "نعم"]
    assert cut_long("aaa bbb ccc", 7) == ["aaa bbb", "ccc"]
    assert cut_long("abcdefghij", 4) == ["abcd", "efgh", "ij"]
    assert cut_long("short", 512) == ["short"]


def test_cleaning_rules(tmp_path, capsys):
    root = tmp_path / "mc4"
    long_words = " ".join(["wort"] * 30)                   # 149 characters
    write_shard(root / SHARDS / "c4-de.tfrecord-00000-of-02048.json.gz", [
        doc("Das ist der erste Satz. Das ist der zweite Satz!\nKurz.\n\n  Das   ist der erste Satz.  "),
        "",                                                # blank lines between documents are not documents
        doc("Ｆｕｌｌｗｉｄｔｈ ｕｎｄ ﬁligran werden normalisiert.\r\n" + long_words),
        doc("Das ist der zweite Satz!"),
    ])
    write_shard(root / SHARDS / "c4-de-validation.tfrecord-00000-of-00016.json.gz", [
        doc("Das ist der erste Satz. Ein neuer Satz nur im Dev-Teil."),
    ])
    out = tmp_path / "text"
    rc, _, err = run(capsys, "prepare", "--root", str(root), "--out", str(out), "--max-chars", "100",
                     "--no-progress")
    assert rc == 0, err
    assert read_lines(out / "train" / "de.txt") == [
        "Das ist der erste Satz.", "Das ist der zweite Satz!",
        "Fullwidth und filigran werden normalisiert.",
        " ".join(["wort"] * 20),                           # cut at the last space before 100 characters
        " ".join(["wort"] * 10),
    ]
    assert read_lines(out / "dev" / "de.txt") == ["Ein neuer Satz nur im Dev-Teil."]
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))["de"]
    assert stats["train"] == {"shards": 1, "min_chars": 20, "documents": 3, "documents_kept": 2, "sentences": 5,
                              "characters": 23 + 24 + 43 + 99 + 49, "cut": 1, "dropped": {"short": 1, "duplicate": 2},
                              "dropped_characters": {"short": 5, "duplicate": 23 + 24},
                              "bytes": (out / "train" / "de.txt").stat().st_size}
    assert stats["dev"]["dropped"] == {"short": 0, "duplicate": 1}
    assert stats["dev"]["documents_kept"] == 1 and stats["dev"]["dropped_characters"]["duplicate"] == 23
    # A language without validation shards has no dev shard.
    (root / SHARDS / "c4-de-validation.tfrecord-00000-of-00016.json.gz").unlink()
    assert run(capsys, "prepare", "--root", str(root), "--out", str(out), "--no-progress")[0] == 0
    assert not (out / "dev" / "de.txt").exists() and (out / "train" / "de.txt").is_file()


# ---- bad input -----------------------------------------------------------------------------------

def test_bad_shards_are_clear_errors(root, tmp_path, capsys):
    out = tmp_path / "text"
    shard = root / SHARDS / "c4-ru.tfrecord-00000-of-04096.json.gz"
    write_shard(shard, [doc("Первое предложение здесь."), '{"text": "обрыв', doc("Ещё одно.")])
    rc, _, err = run(capsys, "prepare", "--root", str(root), "--out", str(out), "--langs", "ru", "--no-progress")
    assert rc == 1
    assert err.startswith(f"prepare_mc4: {shard}:2: not a JSON line") and "download stage" in err
    assert not (out / "train" / "ru.txt").exists() and not list(out.rglob(".*.tmp"))

    write_shard(shard, [doc("Первое предложение здесь."), json.dumps({"url": "https://example.org/"})])
    rc, _, err = run(capsys, "prepare", "--root", str(root), "--out", str(out), "--langs", "ru", "--no-progress")
    assert rc == 1 and f"{shard}:2: expected a JSON object with a 'text' string" in err

    data = gzip.compress(b"".join((doc(f"Satz Nummer {i} ist hier.") + "\n").encode() for i in range(200)))
    shard.write_bytes(data[:len(data) // 2])
    rc, _, err = run(capsys, "prepare", "--root", str(root), "--out", str(out), "--langs", "ru", "--no-progress")
    assert rc == 1 and f"{shard}: unreadable gzip" in err

    shard.unlink()
    rc, _, err = run(capsys, "prepare", "--root", str(root), "--out", str(out), "--langs", "ru,de", "--no-progress")
    assert rc == 1 and "no train shards of 'ru'" in err

    rc, _, err = run(capsys, "prepare", "--root", str(tmp_path / "nowhere"), "--out", str(out), "--no-progress")
    assert rc == 1 and "no mC4 shards" in err


def test_module_entry_point(root, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mslam.bin.prepare_mc4", "prepare", "--root", str(root),
                           "--out", str(tmp_path / "text"), "--langs", "xx"], capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.startswith("prepare_mc4: unknown mC4 language(s) xx;")
    assert "Traceback" not in proc.stderr


# ---- scripts without spaces, and languages left without text -------------------------------------

CHINESE = ["今天天气很好。我们去公园吧。", "他是我的老师。这本书很有意思！", "好。"]   # 7 and 8 characters, and 2


def test_chinese_sentences_are_kept_by_the_minimum_of_their_script(tmp_path, capsys):
    root = tmp_path / "mc4"
    write_shard(root / SHARDS / "c4-zh.tfrecord-00000-of-01024.json.gz", [doc(t) for t in CHINESE])
    out = tmp_path / "text"
    rc, stdout, err = run(capsys, "prepare", "--root", str(root), "--out", str(out), "--no-progress")
    assert rc == 0, err
    assert read_lines(out / "train" / "zh.txt") == ["今天天气很好。", "我们去公园吧。", "他是我的老师。", "这本书很有意思!"]
    assert ("prepare_mc4: zh: train: kept 2 of 3 documents, 4 sentences (29 chars); "
            "dropped 1 short < 5 (2 chars), 0 duplicate (0 chars)") in stdout


def test_a_language_left_without_text_fails_after_the_summary(root, tmp_path, capsys):
    write_shard(root / SHARDS / "c4-zh.tfrecord-00000-of-01024.json.gz", [doc(t) for t in CHINESE])
    out = tmp_path / "text"
    rc, stdout, err = run(capsys, "prepare", "--root", str(root), "--out", str(out), "--langs", "de,zh",
                          "--min-chars", "40", "--no-progress")
    assert rc == 1
    assert err.startswith("prepare_mc4: no text left after cleaning in 1 language(s): zh (train: kept 0 of 3 "
                          "documents, 0 sentences (0 chars); dropped 5 short < 10 (31 chars)")
    assert "--min-chars" in err and "prepare_mc4: de: train: kept" in stdout
    assert not (out / "train" / "zh.txt").exists() and (out / "train" / "de.txt").is_file()


# ---- a job array: --part J/N reads shards, the plain call de-duplicates and writes ---------------

REPO = Path(__file__).resolve().parents[2]
PART_LANGS = "de,ru,ar"
# The shards in the order parts take them (languages as given, train first): part 1 has 0, 2, 4, 6.
PART_SHARDS = [["de/train-00000", "de/dev-00000", "ru/dev-00000", "ar/dev-00000"],
               ["de/train-00001", "ru/train-00000", "ar/train-00000"]]


def second_de_shard(root: Path) -> None:
    """A second de train shard repeating the first (in another order) plus one new sentence, so that
    repeats cross the shards of two parts."""
    texts = fixture_texts(root, "de", "train")[::-1] + ["Ein ganz neuer Satz, der lang genug ist."]
    write_shard(root / SHARDS / "c4-de.tfrecord-00001-of-01024.json.gz", [doc(t) for t in texts])


def outputs(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def no_shard_is_read(monkeypatch) -> None:
    def read(shard, *args):
        raise AssertionError(f"{shard} was read again")
    monkeypatch.setattr(mc4, "scan_shard", read)


def test_parts_then_the_plain_call_write_what_one_call_writes(root, tmp_path, capsys, monkeypatch, caplog):
    second_de_shard(root)
    args = ["prepare", "--root", str(root), "--langs", PART_LANGS, "--min-chars", "1", "--no-progress"]
    whole, out = tmp_path / "whole", tmp_path / "text"
    assert run(capsys, *args, "--out", str(whole))[0] == 0
    for j, shards in enumerate(PART_SHARDS, 1):
        rc, stdout, _ = run(capsys, *args, "--out", str(out), "--part", f"{j}/2")
        assert rc == 0 and f"prepare_mc4: part {j}/2: shard(s) {' '.join(shards)} stamped in " in stdout
    assert sorted(p.name for p in out.iterdir()) == [mc4.WORK]   # nothing but the shards read
    with monkeypatch.context() as m, caplog.at_level("INFO"):
        no_shard_is_read(m)
        rc, _, _ = run(capsys, *args, "--out", str(out), "--part", "2/2")   # a part run twice reads nothing
        assert rc == 0 and "3 shard(s) read earlier, 0 to read" in caplog.text
        rc, stdout, _ = run(capsys, *args, "--out", str(out))
        assert rc == 0 and "3 of 3 languages made" in stdout and "7 shard(s) read earlier, 0 to read" in caplog.text
    assert outputs(out) == outputs(whole)
    assert json.loads(outputs(out)["stats.json"])["de"]["train"]["dropped"]["duplicate"] > 0   # across the parts
    rc, stdout, _ = run(capsys, *args, "--out", str(out), "--part", "1/2")
    assert rc == 0 and "part 1/2: the data dirs are up to date; nothing to do" in stdout


def test_parts_run_at_once_as_processes_then_the_plain_call(root, tmp_path, capsys):
    second_de_shard(root)
    args = ["prepare", "--root", str(root), "--langs", PART_LANGS, "--min-chars", "1", "--no-progress"]
    assert run(capsys, *args, "--out", str(tmp_path / "whole"))[0] == 0
    prep = [sys.executable, "-m", "mslam.bin.prepare_mc4", *args, "--out", str(tmp_path / "text")]
    jobs = [subprocess.Popen([*prep, "--part", f"{j}/2"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for j in (1, 2)]
    results = [job.communicate() for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0], results
    for (stdout, _), shards in zip(results, PART_SHARDS):
        assert f"shard(s) {' '.join(shards)} stamped in" in stdout
    plain = subprocess.run(prep, cwd=REPO, capture_output=True, text=True)
    assert plain.returncode == 0, plain.stderr
    assert "prepare_mc4: mc4: 7 shard(s) read earlier, 0 to read" in plain.stderr
    assert outputs(tmp_path / "text") == outputs(tmp_path / "whole")


def test_a_shard_read_with_other_rules_is_read_again(root, tmp_path, capsys, caplog):
    """A part's marker names its shard and rules: other rules or another shard are read again."""
    args = ["prepare", "--root", str(root), "--langs", "de", "--no-progress", "--out", str(tmp_path / "text")]
    assert run(capsys, *args, "--part", "1/1", "--min-chars", "1")[0] == 0
    with caplog.at_level("INFO"):
        assert run(capsys, *args)[0] == 0    # --min-chars 20
    assert "mc4: 0 shard(s) read earlier, 2 to read" in caplog.text
    assert run(capsys, *args, "--out", str(tmp_path / "whole"))[0] == 0
    assert outputs(tmp_path / "text") == outputs(tmp_path / "whole")


@pytest.mark.parametrize("spec", ["3/2", "0/2", "garbage", "1/0", "1/"])
def test_a_bad_part_is_refused(tmp_path, capsys, spec):
    with pytest.raises(SystemExit) as exit_:
        main(["prepare", "--root", str(tmp_path), "--out", str(tmp_path / "out"), "--part", spec])
    assert exit_.value.code == 2 and f"--part {spec!r}: expected J/N" in capsys.readouterr().err


def test_a_part_with_a_cap_is_refused(root, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["prepare", "--root", str(root), "--out", str(tmp_path / "out"), "--part", "1/2",
              "--max-sentences-per-lang", "3"])
    assert exit_.value.code == 2 and "drop --part" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no shards to spread"):
        mc4.prepare(root, tmp_path / "out", rules=mc4.CleaningRules(max_sentences=3), part=Part(1, 2))
    assert not (tmp_path / "out").exists()
