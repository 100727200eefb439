"""MINDS-14 preparation on the download fixture: data dirs that match the CSVs, 8 kHz audio that loads,
a seeded split stratified by intent, cheap and safe reruns, and clear errors for bad downloads."""
from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from corpora_test_utils import copy_download, fixture_langs, snapshot
from mslam.bin.prepare_minds14 import main
from mslam.data.audio import load_audio, read_audio
from mslam.data.corpora import minds14
from mslam.data.fixtures import MINDS14_RATE
from mslam.data.kaldi import DataDir

REPO = Path(__file__).resolve().parents[2]


def prepare(root: Path, out: Path, *extra: str) -> int:
    return main(["prepare", "--root", str(root), "--out", str(out), "--no-progress", *extra])


def source_rows(tree: Path) -> dict[str, dict]:
    """Every CSV row of the fixture archive, read straight from the nested zips: utt id -> fields."""
    with zipfile.ZipFile(tree / "minds14" / "MInDS-14.zip") as outer:
        text_zip = zipfile.ZipFile(io.BytesIO(outer.read("MInDS-14/text.zip")))
    rows = {}
    for name in text_zip.namelist():
        lang = name[:-len(".csv")]
        reader = csv.reader(io.StringIO(text_zip.read(name).decode("utf-8")))
        next(reader)
        for filepath, text, text_en, intent in reader:
            utt = filepath[:-len(".wav")].replace("/", "_")
            rows[utt] = {"lang": lang, "filepath": filepath, "text": text, "text_en": text_en, "intent": intent}
    return rows


def split_ids(out: Path) -> dict[str, set[str]]:
    return {split: set(DataDir(out / split).validate().utt_ids) for split in minds14.SPLITS}


@pytest.fixture(scope="module")
def prepared(fixture_tree, tmp_path_factory) -> tuple[Path, Path]:
    """The fixture download prepared once with the defaults (seed 42, 80/10/10): (root, out)."""
    tmp = tmp_path_factory.mktemp("minds14")
    root, out = copy_download(fixture_tree, "minds14", tmp), tmp / "out"
    assert prepare(root, out, "--langs", ",".join(fixture_langs(fixture_tree, "minds14"))) == 0
    return root, out


def test_classes_and_files(fixture_tree, capsys):
    # The fixture takes its intents from minds14.INTENTS; test_fixtures_tree checks them on its own.
    assert len(set(minds14.INTENTS)) == len(minds14.INTENTS) == 14 and len(minds14.LANGS) == 14
    assert main(["intents"]) == 0
    assert capsys.readouterr().out.splitlines() == list(minds14.INTENTS)
    manifest = json.loads((fixture_tree / "MANIFEST.json").read_text(encoding="utf-8"))["corpora"]["minds14"]
    assert main(["files", "--langs", ",".join(manifest["languages"])]) == 0
    assert capsys.readouterr().out.split() == manifest["files"] == ["MInDS-14.zip"]
    assert main(["files", "--langs", "xx-XX"]) == 1
    assert "xx-XX" in capsys.readouterr().err


def test_prepare_matches_the_csvs(prepared, fixture_tree):
    root, out = prepared
    expected = source_rows(fixture_tree)
    ids = split_ids(out)
    assert set.union(*ids.values()) == set(expected)
    assert sum(len(x) for x in ids.values()) == len(expected)   # disjoint
    assert (root / "MInDS-14" / "license.md").is_file()
    for split in minds14.SPLITS:
        for u in DataDir(out / split):
            row = expected[u.id]
            assert (u.lang, u.text, u.translations, u.intent) == (row["lang"], row["text"], {"en": row["text_en"]},
                                                                 row["intent"])
            assert u.speaker == u.id
            assert Path(u.wav) == (root / "MInDS-14" / "audio" / row["filepath"]).resolve()
            samples, rate = read_audio(u.wav, u.id)
            assert rate == MINDS14_RATE
            assert abs(load_audio(u.wav, utt=u.id).numel() - 2 * samples.size) <= 1   # 8 -> 16 kHz


def test_split_is_stratified_seeded_and_disjoint_on_the_fixture(prepared, fixture_tree, tmp_path):
    root, out = prepared
    expected = source_rows(fixture_tree)
    ids = split_ids(out)
    for lang in fixture_langs(fixture_tree, "minds14"):
        n = Counter(r["intent"] for r in expected.values() if r["lang"] == lang)
        in_train = {expected[u]["intent"] for u in ids["train"] if expected[u]["lang"] == lang}
        assert in_train == set(n)
        per_split = {s: sum(expected[u]["lang"] == lang for u in ids[s]) for s in minds14.SPLITS}
        total = sum(n.values())
        assert per_split["dev"] == per_split["test"] == round(total * 0.1) > 0
    # One language alone gets the split it gets among others; another seed gives another split.
    assert prepare(root, tmp_path / "de", "--langs", "de-DE") == 0
    assert split_ids(tmp_path / "de") == {s: {u for u in x if u.startswith("de-DE")} for s, x in ids.items()}
    langs = ",".join(fixture_langs(fixture_tree, "minds14"))
    assert prepare(root, tmp_path / "seed7", "--langs", langs, "--seed", "7") == 0
    assert split_ids(tmp_path / "seed7") != ids


def make_rows(counts: dict[str, int], lang: str = "de-DE") -> list[minds14.Row]:
    return [minds14.Row(f"x.csv:{i}", lang, f"{lang}~{intent.upper()}/response_{i}.wav", "t", "t", intent)
            for intent, n in counts.items() for i in range(1, n + 1)]


def test_split_of_a_real_sized_language():
    # Uneven classes like the real corpus (about 40 per intent, some rarer).
    counts = {intent: 3 + 7 * i for i, intent in enumerate(minds14.INTENTS)}
    rows = make_rows(counts)
    split = minds14.split_language(rows, seed=42, dev_frac=0.1, test_frac=0.1)
    names = {s: [r.filepath for r in x] for s, x in split.items()}
    assert sorted(sum(names.values(), [])) == sorted(r.filepath for r in rows)   # disjoint, nothing lost
    assert {r.intent for r in split["train"]} == set(minds14.INTENTS)
    assert len(split["dev"]) == len(split["test"]) == round(len(rows) * 0.1)
    for intent, n in counts.items():   # stratified: each intent near its share
        for s in ("dev", "test"):
            assert abs(sum(r.intent == intent for r in split[s]) - n * 0.1) < 1
    again = minds14.split_language(list(reversed(rows)), seed=42, dev_frac=0.1, test_frac=0.1)
    assert {s: [r.filepath for r in x] for s, x in again.items()} == names   # the CSV order does not matter
    other = minds14.split_language(rows, seed=43, dev_frac=0.1, test_frac=0.1)
    assert {s: [r.filepath for r in x] for s, x in other.items()} != names


def test_rerun_does_no_work_and_changes_nothing(fixture_tree, tmp_path):
    root, out = copy_download(fixture_tree, "minds14", tmp_path), tmp_path / "out"
    langs = ",".join(fixture_langs(fixture_tree, "minds14"))
    assert prepare(root, out, "--langs", langs) == 0
    before_out, before_root = snapshot(out), snapshot(root)
    assert prepare(root, out, "--langs", langs) == 0
    assert snapshot(out) == before_out and snapshot(root) == before_root
    # The extracted layout (as ESPnet's recipe leaves it) is enough without any archive.
    for archive in root.rglob("*.zip"):
        archive.unlink()
    assert prepare(root, out, "--langs", langs) == 0
    assert snapshot(out) == before_out


def edit_csv(root: Path, lang: str, line: int, fields: list[str]) -> Path:
    path = root / "MInDS-14" / "text" / f"{lang}.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(fields)
    lines[line - 1] = buf.getvalue()
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_unknown_intent_is_a_clear_error_through_the_command_line(prepared, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(prepared[0] / "MInDS-14", root / "MInDS-14")
    path = edit_csv(root, "fr-FR", 3, ["fr-FR~ABROAD/response_2.wav", "bonjour", "hello", "Order_Pizza"])
    proc = subprocess.run([sys.executable, "-m", "mslam.bin.prepare_minds14", "prepare", "--root", str(root),
                           "--out", str(tmp_path / "out"), "--langs", "fr-FR", "--no-progress"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 1
    assert f"{path}:3: intent 'Order_Pizza' is not one of the 14 classes" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_malformed_row_and_missing_audio_are_clear_errors(prepared, tmp_path, capsys):
    root = tmp_path / "root"
    shutil.copytree(prepared[0] / "MInDS-14", root / "MInDS-14")
    path = edit_csv(root, "it-IT", 2, ["it-IT~ABROAD/response_1.wav", "ciao", "abroad"])
    assert prepare(root, tmp_path / "out", "--langs", "it-IT") == 1
    assert f"{path}:2: 3 columns, expected 4" in capsys.readouterr().err
    path = root / "MInDS-14" / "text" / "de-DE.csv"
    filepath = path.read_text(encoding="utf-8").splitlines()[4].split(",")[0]
    (root / "MInDS-14" / "audio" / filepath).unlink()
    assert prepare(root, tmp_path / "out", "--langs", "de-DE") == 1
    err = capsys.readouterr().err
    assert f"{path}:5: audio file" in err and filepath in err and "Traceback" not in err


def test_language_missing_from_the_download_is_a_clear_error(prepared, tmp_path, capsys):
    assert prepare(prepared[0], tmp_path / "out", "--langs", "de-DE,en-US") == 1
    err = capsys.readouterr().err
    assert "en-US.csv: not found" in err and "download stage" in err


def test_corrupt_archive_is_a_clear_error(fixture_tree, tmp_path, capsys):
    root = copy_download(fixture_tree, "minds14", tmp_path)
    archive = root / "MInDS-14.zip"
    good = archive.read_bytes()
    archive.write_bytes(good[:len(good) // 3])
    assert prepare(root, tmp_path / "out", "--langs", "de-DE") == 1
    assert str(archive) in capsys.readouterr().err
    assert sorted(p.name for p in root.iterdir()) == ["MInDS-14.zip"]   # nothing half-extracted
    archive.write_bytes(good)
    assert prepare(root, tmp_path / "out", "--langs", "de-DE") == 0
