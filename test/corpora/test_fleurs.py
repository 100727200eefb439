"""FLEURS preparation on the download fixture: data dirs that match the TSVs, audio that loads,
cheap and safe reruns, and clear errors for bad downloads."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from corpora_test_utils import copy_download, fixture_langs, snapshot
from mslam.bin.prepare_fleurs import main
from mslam.data.audio import load_audio
from mslam.data.corpora import fleurs
from mslam.data.kaldi import DataDir

REPO = Path(__file__).resolve().parents[2]


def prepare(root: Path, out: Path, *extra: str) -> int:
    return main(["prepare", "--root", str(root), "--out", str(out), "--no-progress", *extra])


def tsv_rows(root: Path, lang: str, split: str) -> list[list[str]]:
    lines = (root / "data" / lang / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
    return [line.split("\t") for line in lines if line]


def test_split_names_and_language_codes():
    # The fixture takes its split names from fleurs.SPLITS; test_fixtures_tree checks them on its own.
    assert fleurs.SPLITS == ("train", "dev", "test")
    assert len(fleurs.LANGS) == len(set(fleurs.LANGS)) == 102


def test_files_lists_the_fixture_files(fixture_tree, capsys):
    manifest = json.loads((fixture_tree / "MANIFEST.json").read_text(encoding="utf-8"))["corpora"]["fleurs"]
    assert main(["files", "--langs", ",".join(manifest["languages"])]) == 0
    listed = capsys.readouterr().out.split()
    assert sorted(listed) == sorted(manifest["files"])
    assert all((fixture_tree / "fleurs" / path).is_file() for path in listed)
    assert main(["files"]) == 0
    everything = capsys.readouterr().out.split()
    assert len(everything) == 102 * 6 and set(listed) < set(everything)


def test_prepare_matches_the_tsvs(fixture_tree, tmp_path):
    root, out = copy_download(fixture_tree, "fleurs", tmp_path), tmp_path / "out"
    langs = fixture_langs(fixture_tree, "fleurs")
    assert prepare(root, out, "--langs", ",".join(langs), "--nj", "2") == 0
    for split in fleurs.SPLITS:
        d = DataDir(out / split).validate()
        expected = {}
        for lang in langs:
            for row in tsv_rows(root, lang, split):
                expected[f"{lang}_{Path(row[1]).stem}"] = (lang, row[1], row[3], int(row[5]))
        assert set(d.utt_ids) == set(expected) and len(expected) > 0
        assert {u.lang for u in d} == set(langs)
        for u in d:
            lang, file_name, transcription, samples = expected[u.id]
            assert (u.lang, u.text, u.num_samples) == (lang, transcription, samples)
            assert u.speaker == u.id   # a pseudo speaker per recording
            assert Path(u.wav) == (root / "data" / lang / "audio" / split / file_name).resolve()
            assert load_audio(u.wav, utt=u.id).numel() == samples   # 16 kHz: no resampling
        assert not (out / f"{split}.tmp").exists()


def test_langs_subset_and_unknown_language(fixture_tree, tmp_path, capsys):
    root, out = copy_download(fixture_tree, "fleurs", tmp_path), tmp_path / "out"
    assert prepare(root, out, "--langs", "fr_fr") == 0
    for split in fleurs.SPLITS:
        d = DataDir(out / split).validate()
        assert {u.lang for u in d} == {"fr_fr"}
        assert len(d) == len(tsv_rows(root, "fr_fr", split))
    assert not (root / "data" / "de_de" / "audio" / "train").exists()   # only what was asked is extracted
    capsys.readouterr()
    assert prepare(root, out, "--langs", "fr_fr,xx_yy") == 1
    err = capsys.readouterr().err
    assert "xx_yy" in err and "de_de" in err and "Traceback" not in err


def test_rerun_does_no_work_and_changes_nothing(fixture_tree, tmp_path):
    root, out = copy_download(fixture_tree, "fleurs", tmp_path), tmp_path / "out"
    assert prepare(root, out, "--langs", "de_de,ru_ru") == 0
    before_out, before_root = snapshot(out), snapshot(root)
    assert prepare(root, out, "--langs", "de_de,ru_ru") == 0
    assert snapshot(out) == before_out and snapshot(root) == before_root
    # Extracted once: the archives are no longer needed (the layout a user's own `tar xzf` gives).
    for archive in root.rglob("*.tar.gz"):
        archive.unlink()
    assert prepare(root, out, "--langs", "de_de,ru_ru") == 0
    assert snapshot(out) == before_out


def test_repeated_file_name_keeps_every_row_with_unique_ids(fixture_tree, tmp_path):
    root, out = copy_download(fixture_tree, "fleurs", tmp_path), tmp_path / "out"
    tsv = root / "data" / "de_de" / "train.tsv"
    first = tsv.read_text(encoding="utf-8").splitlines()[0]
    tsv.write_text(tsv.read_text(encoding="utf-8") + first + "\n", encoding="utf-8")
    assert prepare(root, out, "--langs", "de_de") == 0
    d = DataDir(out / "train").validate()
    recording = f"de_de_{Path(first.split(chr(9))[1]).stem}"
    assert d.utterance(f"{recording}-2").speaker == d.utterance(recording).speaker == recording
    assert len(d) == len(tsv_rows(root, "de_de", "train"))


def test_missing_audio_file_is_a_clear_error(fixture_tree, tmp_path, capsys):
    root, out = copy_download(fixture_tree, "fleurs", tmp_path), tmp_path / "out"
    assert prepare(root, out, "--langs", "de_de") == 0
    row = tsv_rows(root, "de_de", "dev")[1]
    (root / "data" / "de_de" / "audio" / "dev" / row[1]).unlink()
    capsys.readouterr()
    assert prepare(root, out, "--langs", "de_de") == 1
    err = capsys.readouterr().err
    assert "dev.tsv:2: audio file" in err and row[1] in err and "Traceback" not in err


def test_malformed_row_is_a_clear_error_through_the_command_line(fixture_tree, tmp_path):
    root, out = copy_download(fixture_tree, "fleurs", tmp_path), tmp_path / "out"
    tsv = root / "data" / "fr_fr" / "test.tsv"
    n = len(tsv_rows(root, "fr_fr", "test"))
    with open(tsv, "a", encoding="utf-8") as f:
        f.write("1234\tx.wav\tSix columns only.\tsix columns only\t6\tMALE\n")
    proc = subprocess.run([sys.executable, "-m", "mslam.bin.prepare_fleurs", "prepare", "--root", str(root),
                           "--out", str(out), "--langs", "fr_fr", "--no-progress"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 1
    assert f"{tsv}:{n + 1}: 6 TAB-separated columns, expected 7" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_corrupt_archive_is_a_clear_error_and_leaves_nothing_half_extracted(fixture_tree, tmp_path, capsys):
    root, out = copy_download(fixture_tree, "fleurs", tmp_path), tmp_path / "out"
    archive = root / "data" / "ru_ru" / "audio" / "train.tar.gz"
    good = archive.read_bytes()
    archive.write_bytes(good[:len(good) // 2])
    assert prepare(root, out, "--langs", "ru_ru") == 1
    err = capsys.readouterr().err
    assert str(archive) in err and "delete it" in err
    assert sorted(p.name for p in archive.parent.iterdir() if p.name.startswith(("train", ".train"))) == [
        "train.tar.gz"]
    archive.write_bytes(good)   # a fresh download: the rerun extracts it
    assert prepare(root, out, "--langs", "ru_ru") == 0
    assert len(DataDir(out / "train")) == len(tsv_rows(root, "ru_ru", "train"))
