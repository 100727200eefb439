"""prepare_covost2 on the download fixtures (Common Voice v4 tarballs + CoVoST 2 TSVs): the download
lists, the resource groups, the data dirs against the fixture's own tables, the audio, reruns, and
clear errors for bad downloads.

Expected values are read from the fixture archives here, not from the module under test.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest
import soundfile

from mslam.bin.prepare_covost2 import main
from mslam.data.audio import load_audio
from mslam.data.fixtures import read_toy
from mslam.data.kaldi import DataDir, read_table

CV_RELEASE = "cv-corpus-4-2019-12-10"
FIXTURE_LANGS = ["de", "fr", "es"]
SPLIT_OF = {"train": "train", "train_covost": "train", "dev": "dev", "test": "test"}
PAPER_GROUPS = {"high": {"fr", "de", "es", "ca"}, "mid": {"fa", "it", "ru", "pt", "zh-CN"},
                "low": {"tr", "ar", "et", "mn", "nl", "sv-SE", "lv", "sl", "ta", "ja", "id", "cy"}}


# ---- helpers ---------------------------------------------------------------------------------

def cv_tarball(tree: Path, lang: str) -> Path:
    return tree / "commonvoice" / CV_RELEASE / f"{lang}.tar.gz"


def covost_tarball(tree: Path, lang: str) -> Path:
    return tree / "covost2" / f"covost_v2.{lang}_en.tsv.tar.gz"


def tsv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8")), delimiter="\t", quoting=csv.QUOTE_NONE))


def fixture_tables(tree: Path, lang: str) -> tuple[dict[str, dict], list[dict]]:
    """validated.tsv by clip path, and the CoVoST rows, as the fixture archives hold them."""
    with tarfile.open(cv_tarball(tree, lang)) as tar:
        validated = {r["path"]: r for r in tsv_rows(tar.extractfile("validated.tsv").read())}
    with tarfile.open(covost_tarball(tree, lang)) as tar:
        covost = tsv_rows(tar.extractfile(f"covost_v2.{lang}_en.tsv").read())
    return validated, covost


def expected_dirs(tree: Path, langs: list[str]) -> dict[str, dict[str, dict]]:
    """{split: {utt id: {text, text.en, utt2spk, utt2lang, clip}}} from the fixture's own tables."""
    out: dict[str, dict[str, dict]] = {"train": {}, "dev": {}, "test": {}}
    for lang in langs:
        validated, covost = fixture_tables(tree, lang)
        for row in covost:
            cv = validated[row["path"]]
            out[SPLIT_OF[row["split"]]][f"{lang}_{row['path'].removesuffix('.mp3')}"] = {
                "text": cv["sentence"], "text.en": row["translation"], "utt2spk": cv["client_id"],
                "utt2lang": lang, "clip": row["path"]}
    return out


def download(tree: Path, root: Path, langs: list[str] = FIXTURE_LANGS) -> tuple[Path, Path]:
    """The downloaded roots as the recipe lays them out: <base root>/<path under the URL base>."""
    cv, covost = root / "cv", root / "covost"
    for lang in langs:
        for src, dst in ((cv_tarball(tree, lang), cv / CV_RELEASE / f"{lang}.tar.gz"),
                         (covost_tarball(tree, lang), covost / f"covost_v2.{lang}_en.tsv.tar.gz")):
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
    return cv, covost


def run(capsys, *args: object) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def prepare(capsys, cv: Path, covost: Path, out: Path, *extra: object) -> tuple[int, str, str]:
    return run(capsys, "prepare", "--cv-root", cv, "--covost-root", covost, "--out", out, "--no-progress", *extra)


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, fixture_tree) -> tuple[Path, Path, Path]:
    """All fixture languages prepared once: (Common Voice root, CoVoST root, out)."""
    root = tmp_path_factory.mktemp("covost2")
    cv, covost = download(fixture_tree, root)
    assert main(["prepare", "--cv-root", str(cv), "--covost-root", str(covost), "--out", str(root / "data"),
                 "--langs", ",".join(FIXTURE_LANGS), "--nj", "2", "--no-progress"]) == 0
    return cv, covost, root / "data"


# ---- files and groups ------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["commonvoice", "covost2"])
def test_files_lists_exactly_the_fixture_files(capsys, fixture_tree, source):
    corpus = json.loads((fixture_tree / "MANIFEST.json").read_text())["corpora"][source]
    rc, out, _ = run(capsys, "files", "--source", source, "--langs", ",".join(corpus["languages"]))
    assert rc == 0
    assert sorted(out.split()) == sorted(corpus["files"])
    assert all((fixture_tree / source / rel).is_file() for rel in out.split())


def test_files_default_is_all_21_languages(capsys):
    rc, out, _ = run(capsys, "files", "--source", "commonvoice")
    assert rc == 0
    assert len(out.split()) == 21
    assert f"{CV_RELEASE}/zh-CN.tar.gz" in out.split()
    rc, out, _ = run(capsys, "files", "--source", "covost2", "--langs", "sv-SE")
    assert out.split() == ["covost_v2.sv-SE_en.tsv.tar.gz"]


def test_groups_json_has_the_papers_groups_in_common_voice_codes(capsys):
    rc, out, _ = run(capsys, "groups")
    assert rc == 0
    groups = json.loads(out)
    mini = json.loads(Path(__file__).resolve().parents[2].joinpath("egs/mini/conf/st_groups.json").read_text())
    assert set(groups) == set(mini) == {"high", "mid", "low"}
    assert [len(groups[g]) for g in ("high", "mid", "low")] == [4, 5, 12]
    assert {g: set(v) for g, v in groups.items()} == PAPER_GROUPS
    assert sum(len(v) for v in groups.values()) == 21


# ---- prepare ---------------------------------------------------------------------------------

def test_data_dirs_equal_the_fixture_tables(prepared, fixture_tree):
    cv, _, out = prepared
    expected = expected_dirs(fixture_tree, FIXTURE_LANGS)
    assert {s: len(u) for s, u in expected.items()} == {"train": 9, "dev": 3, "test": 3}
    for split, utts in expected.items():
        d = DataDir(out / split).validate()
        assert set(d.tables) >= {"wav.scp", "text", "text.en", "utt2spk", "utt2lang"}
        assert d.utt_ids == sorted(utts)
        for table in ("text", "text.en", "utt2spk", "utt2lang"):
            assert d.tables[table] == {u: e[table] for u, e in utts.items()}, table
        for utt, e in utts.items():
            wav = Path(d.tables["wav.scp"][utt])
            assert wav.is_absolute() and wav == (cv / e["utt2lang"] / "clips" / e["clip"]).absolute()
    # Extracted once, in ESPnet's layout.
    for lang in FIXTURE_LANGS:
        assert (cv / lang / "validated.tsv").is_file() and (cv / lang / "clips").is_dir()


def test_train_covost_rows_are_train(prepared, fixture_tree):
    _, _, out = prepared
    train = read_table(out / "train" / "text.en")
    for lang in FIXTURE_LANGS:
        extended = [r for r in fixture_tables(fixture_tree, lang)[1] if r["split"] == "train_covost"]
        assert extended and all(f"{lang}_{r['path'].removesuffix('.mp3')}" in train for r in extended)


def test_mp3_audio_loads_at_16k_with_the_toy_durations(prepared, mini_corpus):
    _, _, out = prepared
    toy = read_toy(mini_corpus, "st")

    def norm(text: str) -> str:
        return text.strip().rstrip(".").lower()

    for split in ("train", "dev", "test"):
        d = DataDir(out / split)
        for utt in d:
            info = soundfile.info(utt.wav)
            assert info.samplerate == 48000
            wave = load_audio(utt.wav, utt=utt.id)
            assert wave.ndim == 1
            assert abs(len(wave) / 16000 - info.duration) < 0.01
            # The clip is the toy utterance it was made from (mp3 adds up to a few frames of padding).
            sources = [u for u in toy if u.lang == utt.lang and norm(u.text) == norm(utt.text)
                       and hashlib.sha512(f"0-{u.speaker}".encode()).hexdigest() == utt.speaker]
            assert sources, utt.id
            assert min(abs(soundfile.info(u.wav).duration - len(wave) / 16000) for u in sources) < 0.1, utt.id


def test_langs_subset(capsys, tmp_path, fixture_tree):
    cv, covost = download(fixture_tree, tmp_path, ["fr"])
    rc, out, err = prepare(capsys, cv, covost, tmp_path / "data", "--langs", "fr")
    assert rc == 0, err
    expected = expected_dirs(fixture_tree, ["fr"])
    for split, utts in expected.items():
        d = DataDir(tmp_path / "data" / split).validate()
        assert d.utt_ids == sorted(utts)
        assert set(d.tables["utt2lang"].values()) == {"fr"}
    assert not (cv / "de").exists()


def test_rerun_does_nothing_and_changes_nothing(capsys, tmp_path, fixture_tree):
    cv, covost = download(fixture_tree, tmp_path, ["de", "es"])
    out = tmp_path / "data"
    assert prepare(capsys, cv, covost, out, "--langs", "de,es")[0] == 0
    before = snapshot(tmp_path)
    # The archives are not needed any more: the extracted copies are used as they are.
    shutil.rmtree(cv / CV_RELEASE)
    for tarball in covost.glob("*.tar.gz"):
        tarball.unlink()
    rc, stdout, err = prepare(capsys, cv, covost, out, "--langs", "de,es")
    assert rc == 0, err
    assert "up to date" in stdout
    assert snapshot(tmp_path) == {k: v for k, v in before.items() if not k.endswith(".tar.gz")}
    # Other languages are a different selection: the dirs are rewritten for it.
    rc, _, _ = prepare(capsys, cv, covost, out, "--langs", "de")
    assert rc == 0
    assert set(read_table(out / "train" / "utt2lang").values()) == {"de"}
    # A shell list (as recipes pass it) is the same selection as a comma list.
    rc, stdout, _ = prepare(capsys, cv, covost, out, "--langs", "de es")
    assert rc == 0 and "written" in stdout
    assert prepare(capsys, cv, covost, out, "--langs", "de,es")[1].count("up to date") == 1


def test_existing_extracted_copy_is_used_without_archives(capsys, tmp_path, fixture_tree):
    cv, covost = tmp_path / "cv", tmp_path / "covost"
    (cv / "es").mkdir(parents=True)
    covost.mkdir()
    with tarfile.open(cv_tarball(fixture_tree, "es")) as tar:
        tar.extractall(cv / "es", filter="data")
    with tarfile.open(covost_tarball(fixture_tree, "es")) as tar:
        tar.extractall(covost, filter="data")
    rc, _, err = prepare(capsys, cv, covost, tmp_path / "data", "--langs", "es")
    assert rc == 0, err
    assert len(DataDir(tmp_path / "data" / "train").validate()) == 3


def test_killed_extraction_is_redone(capsys, tmp_path, fixture_tree):
    cv, covost = download(fixture_tree, tmp_path, ["de"])
    stale = cv / ".de.extracting" / "clips"
    stale.mkdir(parents=True)
    (stale / "half.mp3").write_bytes(b"\xff")
    rc, _, err = prepare(capsys, cv, covost, tmp_path / "data", "--langs", "de")
    assert rc == 0, err
    assert not (cv / ".de.extracting").exists()
    assert not (cv / "de" / "clips" / "half.mp3").exists()


def test_rows_outside_the_join_or_the_splits_are_skipped_and_counted(capsys, caplog, tmp_path, fixture_tree):
    cv, covost = download(fixture_tree, tmp_path, ["de"])
    with tarfile.open(covost_tarball(fixture_tree, "de")) as tar:
        tar.extractall(covost, filter="data")
    tsv = covost / "covost_v2.de_en.tsv"
    header, *rows = [line.split("\t") for line in tsv.read_text(encoding="utf-8").splitlines()]
    split = header.index("split")
    excluded = next(r for r in rows if r[split] == "train")
    excluded[split] = "excluded"                 # a split value that is none of train/dev/test
    orphan = dict(zip(header, rows[0]), path="common_voice_de_1.mp3", split="test")
    rows.append([orphan[c] for c in header])     # a clip that validated.tsv does not have
    tsv.write_text("".join("\t".join(r) + "\n" for r in [header, *rows]), encoding="utf-8")
    caplog.set_level("INFO", logger="mslam.data.covost2")
    rc, _, err = prepare(capsys, cv, covost, tmp_path / "data", "--langs", "de")
    assert rc == 0, err
    train = DataDir(tmp_path / "data" / "train").validate()
    assert len(train) == 2 and f"de_{excluded[header.index('path')].removesuffix('.mp3')}" not in train.utt_ids
    assert len(DataDir(tmp_path / "data" / "test")) == 1
    assert "dropped 1 row(s) whose clip is not in validated.tsv" in caplog.text
    assert "'excluded': 1" in caplog.text
    counts = json.loads((tmp_path / "data" / ".prepare_covost2.json").read_text())["summary"]["per_lang"]["de"]
    assert counts["not_in_validated"] == 1 and counts["other_splits"] == {"excluded": 1}


def test_a_split_with_no_utterance_is_an_error(capsys, tmp_path, fixture_tree):
    cv, covost = download(fixture_tree, tmp_path, ["de"])
    with tarfile.open(covost_tarball(fixture_tree, "de")) as tar:
        tar.extractall(covost, filter="data")
    tsv = covost / "covost_v2.de_en.tsv"
    tsv.write_text(tsv.read_text(encoding="utf-8").replace("\tdev\n", "\texcluded\n"), encoding="utf-8")
    rc, _, err = prepare(capsys, cv, covost, tmp_path / "data", "--langs", "de")
    assert rc == 1 and "select no dev utterance" in err
    assert not (tmp_path / "data" / "train").exists()


def test_missing_clip_is_an_error_naming_it(capsys, tmp_path, fixture_tree):
    cv, covost = download(fixture_tree, tmp_path, ["fr"])
    assert prepare(capsys, cv, covost, tmp_path / "data", "--langs", "fr")[0] == 0
    clip = sorted((cv / "fr" / "clips").glob("*.mp3"))[0]
    clip.unlink()
    (tmp_path / "data" / ".prepare_covost2.json").unlink()
    rc, _, err = prepare(capsys, cv, covost, tmp_path / "data", "--langs", "fr")
    assert rc == 1
    assert err.startswith("prepare_covost2: ") and clip.name in err and "covost_v2.fr_en.tsv:" in err
    assert "Traceback" not in err


def test_malformed_row_is_an_error_naming_the_line(capsys, tmp_path, fixture_tree):
    cv, covost = download(fixture_tree, tmp_path, ["es"])
    (cv / "es").mkdir()
    with tarfile.open(cv_tarball(fixture_tree, "es")) as tar:
        tar.extractall(cv / "es", filter="data")
    validated = cv / "es" / "validated.tsv"
    lines = validated.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = "\t".join(lines[2].split("\t")[:3]) + "\n"      # cut after the sentence column
    validated.write_text("".join(lines), encoding="utf-8")
    rc, _, err = prepare(capsys, cv, covost, tmp_path / "data", "--langs", "es")
    assert rc == 1
    assert f"{validated}:3: 3 TAB-separated field(s), expected 8" in err
    assert "Traceback" not in err


def test_missing_download_and_unknown_language_are_clear_errors(capsys, tmp_path, fixture_tree):
    cv, covost = download(fixture_tree, tmp_path, ["de"])
    (covost / "covost_v2.de_en.tsv.tar.gz").unlink()
    rc, _, err = prepare(capsys, cv, covost, tmp_path / "data", "--langs", "de")
    assert rc == 1 and "covost_v2.de_en.tsv.tar.gz: not found" in err and "download stage" in err
    rc, _, err = prepare(capsys, cv, covost, tmp_path / "data", "--langs", "de,xx")
    assert rc == 1 and "xx" in err and "zh-CN" in err
    rc, _, err = run(capsys, "files", "--source", "covost2", "--langs", "zh")
    assert rc == 1 and "unknown CoVoST 2 source language(s) zh" in err
