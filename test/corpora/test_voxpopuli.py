"""VoxPopuli preparation on the download fixture: file lists, unlabelled and ASR data dirs, reruns,
the corpus's own extracted layout, and bad downloads."""
from __future__ import annotations

import ast
import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from mslam.bin.prepare_voxpopuli import main
from mslam.data.audio import load_audio
from mslam.data.corpora.voxpopuli import ASR_SPLITS, extract_audios
from mslam.data.kaldi import DataDir

LANGS = "de,fr,pl"
YEARS = "2019,2020"


def download(fixture_tree: Path, tmp_path: Path) -> Path:
    """A fresh copy of the fixture's download (prepare writes raw_audios/ into it)."""
    root = tmp_path / "dl"
    shutil.copytree(fixture_tree / "voxpopuli", root)
    return root


def run(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def prepare(capsys, root: Path, out: Path, what: str, *extra: str, caplog=None) -> str:
    """Run `prepare`; returns what it logged (with caplog)."""
    if caplog is not None:
        caplog.clear()
        caplog.set_level("INFO", logger="mslam.data.corpora.voxpopuli")
    rc, _, err = run(capsys, "prepare", "--root", str(root), "--out", str(out), "--what", what,
                     "--years", YEARS, "--no-progress", *extra)
    assert rc == 0, err
    return caplog.text if caplog is not None else ""


def rows(path: Path, delimiter: str) -> list[dict[str, str]]:
    lines = gzip.open(path, "rt", encoding="utf-8").read().splitlines()
    header = lines[0].split(delimiter)
    return [dict(zip(header, line.split(delimiter))) for line in lines[1:]]


def write_rows(path: Path, delimiter: str, table: list[dict[str, str]]) -> None:
    text = "".join(delimiter.join(r) + "\n" for r in [list(table[0])] + [list(r.values()) for r in table])
    path.write_bytes(gzip.compress(text.encode("utf-8")))


def set_field(path: Path, delimiter: str, row: int, column: str, value: str) -> None:
    """Change one field of a manifest; row 0 is the first after the header."""
    table = rows(path, delimiter)
    table[row][column] = value
    write_rows(path, delimiter, table)


def tables(d: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(d.iterdir())}


def check_audio(d: DataDir) -> None:
    for utt in d:
        wave = load_audio(utt.wav, utt=utt.id, segment=utt.segment)
        assert wave.numel() == pytest.approx((utt.segment.end - utt.segment.start) * 16000, abs=1)


# ---- files ---------------------------------------------------------------------------------

def test_files_lists_the_fixture(fixture_tree, capsys):
    manifest = json.loads((fixture_tree / "MANIFEST.json").read_text())["corpora"]["voxpopuli"]
    rc, out, _ = run(capsys, "files", "--langs", LANGS, "--years", YEARS)
    assert rc == 0
    assert sorted(out.split()) == sorted(manifest["files"])

    rc, out, _ = run(capsys, "files", "--langs", "de", "--years", "2020", "--what", "asr")
    assert out.split() == ["annotations/asr/asr_de.tsv.gz", "audios/original_2020.tar"]
    rc, out, _ = run(capsys, "files", "--langs", "de", "--years", "2020", "--what", "unlabelled", "--v2")
    assert out.split() == ["annotations/unlabelled_v2.tsv.gz", "audios/de_2020.tar", "audios/de_2020_2.tar"]
    rc, out, _ = run(capsys, "files")   # every year of every language
    assert len(out.split()) == 1 + 23 * 12 + 16 + 12


def test_unknown_language_or_year_lists_the_valid_ones(capsys):
    rc, out, err = run(capsys, "files", "--langs", "de,pt", "--what", "asr")
    assert rc == 1 and not out
    assert err.startswith("prepare_voxpopuli: ") and "pt" in err and "en de fr es" in err
    rc, _, err = run(capsys, "files", "--years", "2021")
    assert rc == 1 and "2021" in err and "2009..2020" in err


# ---- unlabelled ----------------------------------------------------------------------------

def test_unlabelled_segments_equal_the_manifest(fixture_tree, tmp_path, capsys):
    root = download(fixture_tree, tmp_path)
    prepare(capsys, root, tmp_path / "out", "unlabelled", "--langs", LANGS, "--nj", "2")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".prepare_voxpopuli.done", "train"]
    d = DataDir(tmp_path / "out" / "train").validate()
    expected = {f"{r['event_id']}_{r['segment_no']}": r for r in rows(root / "annotations/unlabelled_v2.tsv.gz", "\t")}
    assert set(d.utt_ids) == set(expected)
    for utt in d:
        row = expected[utt.id]
        assert (utt.segment.recording, utt.segment.start, utt.segment.end) == \
            (row["event_id"], float(row["start"]), float(row["end"]))
        assert utt.speaker == row["event_id"] and utt.lang == row["event_id"][-2:]
        lang, year = utt.lang, row["event_id"][:4]
        assert utt.wav == str(root.resolve() / "raw_audios" / lang / year / f"{row['event_id']}.ogg")
        assert utt.text is None
    check_audio(d)


def test_unlabelled_langs_subset(fixture_tree, tmp_path, capsys):
    root = download(fixture_tree, tmp_path)
    prepare(capsys, root, tmp_path / "out", "unlabelled", "--langs", "fr")
    d = DataDir(tmp_path / "out" / "train").validate()
    assert set(d.tables["utt2lang"].values()) == {"fr"} and len(d) == 4
    assert not (root / "raw_audios" / "de").exists()   # only the chosen archives are extracted


def test_non_plenary_events_need_v2(fixture_tree, tmp_path, capsys, caplog):
    root = download(fixture_tree, tmp_path)
    unlabelled = root / "annotations/unlabelled_v2.tsv.gz"
    table = rows(unlabelled, "\t")
    table.append({"event_id": "20190116-1000-COMMITTEE-AFCO_de", "segment_no": "0", "start": "1.00", "end": "3.50"})
    write_rows(unlabelled, "\t", table)
    err = prepare(capsys, root, tmp_path / "out", "unlabelled", "--langs", LANGS, caplog=caplog)
    assert "left out 1 segment(s) of non-plenary events" in err
    assert len(DataDir(tmp_path / "out" / "train")) == 12
    # With --v2 the event is wanted, and its archive is the second one of the year.
    message = fails(capsys, root, tmp_path / "out", "unlabelled", "--v2")
    assert "20190116-1000-COMMITTEE-AFCO_de" in message and "audios/de_2019_2.tar" in message


# ---- ASR -----------------------------------------------------------------------------------

def test_asr_splits_equal_the_manifests(fixture_tree, tmp_path, capsys, caplog):
    root = download(fixture_tree, tmp_path)
    err = prepare(capsys, root, tmp_path / "out", "asr", "--langs", LANGS, caplog=caplog)
    expected = {}
    for lang in LANGS.split(","):
        for r in rows(root / f"annotations/asr/asr_{lang}.tsv.gz", "|"):
            expected[f"{r['session_id']}-{r['id_']}"] = {**r, "lang": lang}
    assert err.count("left out 1 row(s) with split 'invalid'") == 3
    for split in ("train", "dev", "test"):
        d = DataDir(tmp_path / "out" / split).validate()
        assert set(d.utt_ids) == {u for u, r in expected.items() if r["split"] == split}
        genders = (tmp_path / "out" / split / "utt2gender").read_text().splitlines()
        assert dict(line.split(" ", 1) for line in genders) == {u: expected[u]["gender"] for u in d.utt_ids}
        for utt in d:
            row = expected[utt.id]
            vad = ast.literal_eval(row["vad"])
            assert (utt.segment.start, utt.segment.end) == (vad[0][0], vad[-1][1])
            assert (utt.segment.start, utt.segment.end) == (float(row["start"]), float(row["end"]))
            assert utt.segment.recording == f"{row['session_id']}_original"
            assert (utt.text, utt.speaker, utt.lang) == (row["normed_text"], row["speaker_id"], row["lang"])
        check_audio(d)
    invalid = [u for u, r in expected.items() if r["split"] == "invalid"]
    assert len(invalid) == 3


def test_asr_langs_subset(fixture_tree, tmp_path, capsys):
    root = download(fixture_tree, tmp_path)
    prepare(capsys, root, tmp_path / "out", "asr", "--langs", "pl")
    for split, n in (("train", 2), ("dev", 1), ("test", 1)):
        d = DataDir(tmp_path / "out" / split).validate()
        assert len(d) == n and set(d.tables["utt2lang"].values()) == {"pl"}
    # German has no dev utterance in 2019: an error, before any data dir is written.
    rc, _, err = run(capsys, "prepare", "--root", str(root), "--out", str(tmp_path / "de"), "--what", "asr",
                     "--langs", "de", "--years", "2019", "--no-progress")
    assert rc == 1 and "split(s) dev" in err and "--years" in err and not (tmp_path / "de").exists()


# ---- reruns and existing copies ------------------------------------------------------------

def snapshot(*dirs: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p): (p.stat().st_mtime_ns, p.read_bytes()) for d in dirs for p in sorted(d.rglob("*")) if p.is_file()}


def test_rerun_does_no_work_and_changes_nothing(fixture_tree, tmp_path, capsys, caplog):
    root = download(fixture_tree, tmp_path)
    assert "extracted 2 archive(s)" in prepare(capsys, root, tmp_path / "out", "asr", "--langs", LANGS, caplog=caplog)
    before = snapshot(tmp_path / "out", root / "raw_audios")
    err = prepare(capsys, root, tmp_path / "out", "asr", "--langs", LANGS, caplog=caplog)
    assert "up to date" in err and "extracted" not in err
    assert snapshot(tmp_path / "out", root / "raw_audios") == before

    # Another selection rewrites the data dirs, with the same archives extracted once.
    err = prepare(capsys, root, tmp_path / "out", "asr", "--langs", "de", caplog=caplog)
    assert "up to date" not in err and "extracted" not in err and len(DataDir(tmp_path / "out" / "train")) == 2
    err = prepare(capsys, root, tmp_path / "out", "asr", "--langs", LANGS, caplog=caplog)
    assert "up to date" not in err and len(DataDir(tmp_path / "out" / "train")) == 6

    # A killed extraction (no stamp, a half-filled temporary folder) is redone, and only it.
    raw = root / "raw_audios"
    (raw / ".original_2020.tar.extracted").unlink()
    (raw / ".original_2020.tar.tmp" / "original").mkdir(parents=True)
    (raw / "original/2020/20200212-1500-PLENARY-7_original.ogg").unlink()
    before = snapshot(raw / "original/2019")
    extract_audios(root, ["audios/original_2019.tar", "audios/original_2020.tar"], nj=2, progress=False)
    assert snapshot(raw / "original/2019") == before
    assert (raw / "original/2020/20200212-1500-PLENARY-7_original.ogg").is_file()
    assert not (raw / ".original_2020.tar.tmp").exists() and (raw / ".original_2020.tar.extracted").is_file()


def test_the_corpus_own_layout_is_used_without_archives(fixture_tree, tmp_path, capsys):
    """A root as the corpus's own tools leave it: raw_audios/ extracted, manifests in their folders, no tars."""
    dl = download(fixture_tree, tmp_path)
    extract_audios(dl, [f"audios/{p.name}" for p in (dl / "audios").iterdir()], nj=1, progress=False)
    root = tmp_path / "official"
    shutil.copytree(dl / "raw_audios", root / "raw_audios")
    (root / "unlabelled_data").mkdir()
    shutil.copy(dl / "annotations/unlabelled_v2.tsv.gz", root / "unlabelled_data")
    for lang in LANGS.split(","):
        (root / "transcribed_data" / lang).mkdir(parents=True)
        shutil.copy(dl / f"annotations/asr/asr_{lang}.tsv.gz", root / "transcribed_data" / lang)
    prepare(capsys, root, tmp_path / "a", "asr", "--langs", LANGS)
    prepare(capsys, dl, tmp_path / "b", "asr", "--langs", LANGS)
    prepare(capsys, root, tmp_path / "u", "unlabelled", "--langs", LANGS)
    for split in ("train", "dev", "test"):
        a, b = tables(tmp_path / "a" / split), tables(tmp_path / "b" / split)
        assert a["wav.scp"].replace(str(root.resolve()), "ROOT") == b["wav.scp"].replace(str(dl.resolve()), "ROOT")
        assert {k: v for k, v in a.items() if k != "wav.scp"} == {k: v for k, v in b.items() if k != "wav.scp"}
    assert len(DataDir(tmp_path / "u" / "train").validate()) == 12
    check_audio(DataDir(tmp_path / "u" / "train"))


# ---- bad downloads -------------------------------------------------------------------------

def fails(capsys, root: Path, out: Path, what: str, *extra: str) -> str:
    rc, _, err = run(capsys, "prepare", "--root", str(root), "--out", str(out), "--what", what,
                     "--langs", LANGS, "--years", YEARS, "--no-progress", *extra)
    assert rc == 1
    message = err.strip().splitlines()[-1]
    assert message.startswith("prepare_voxpopuli: ") and "Traceback" not in err
    return message


def test_missing_audio_names_the_recording_and_its_archive(fixture_tree, tmp_path, capsys):
    root = download(fixture_tree, tmp_path)
    (root / "audios/fr_2020.tar").unlink()
    message = fails(capsys, root, tmp_path / "out", "unlabelled")
    assert "raw_audios/fr/2020/20200212-1500-PLENARY-7_fr.ogg" in message
    assert "audios/fr_2020.tar" in message and "download stage" in message
    assert not (tmp_path / "out" / "train").exists()

    (root / "audios/original_2019.tar").unlink()
    message = fails(capsys, root, tmp_path / "out", "asr")
    assert "20190115-0900-PLENARY-3_original" in message and "audios/original_2019.tar" in message


def test_malformed_rows_name_the_file_and_line(fixture_tree, tmp_path, capsys):
    root = download(fixture_tree, tmp_path)
    unlabelled = root / "annotations/unlabelled_v2.tsv.gz"
    set_field(unlabelled, "\t", 4, "end", "soon")
    message = fails(capsys, root, tmp_path / "out", "unlabelled")
    assert f"{unlabelled}:6" in message and "'soon'" in message

    asr = root / "annotations/asr/asr_fr.tsv.gz"
    set_field(asr, "|", 2, "vad", "[[3.0, 2.0]]")
    message = fails(capsys, root, tmp_path / "out", "asr")
    assert f"{asr}:4" in message and "vad" in message

    lines = gzip.open(asr, "rt").read().splitlines()
    lines[1] = lines[1].rsplit("|", 1)[0]    # a row cut short
    asr.write_bytes(gzip.compress("\n".join(lines).encode()))
    message = fails(capsys, root, tmp_path / "out", "asr")
    assert f"{asr}:2" in message and "13 field(s), expected 14" in message


def test_damaged_archive_is_an_error(fixture_tree, tmp_path, capsys):
    root = download(fixture_tree, tmp_path)
    tar = root / "audios/original_2020.tar"
    tar.write_bytes(tar.read_bytes()[:3000])
    message = fails(capsys, root, tmp_path / "out", "asr")
    assert str(tar) in message and "cannot extract" in message
    assert not (root / "raw_audios" / ".original_2020.tar.extracted").exists()


# ---- VAD pieces and transcripts ------------------------------------------------------------

SESSION = "20190115-0900-PLENARY-3"
RATE = 16000


def tone(seconds: float, freq: float, amplitude: float) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def session_with_a_loud_gap() -> np.ndarray:
    """8 s: quiet speech stand-ins (tones at 0.1) with a loud 1 kHz tone (0.9) from 2 s to 3 s."""
    return np.concatenate([tone(2.0, 200, 0.1), tone(1.0, 1000, 0.9), tone(5.0, 300, 0.1)])


def asr_row(id_: str, vad: list, split: str, text: str = "guten tag") -> dict[str, str]:
    start, end = vad[0][0], vad[-1][1]
    return {"id_": id_, "paragraph_id": id_.rsplit("_", 1)[0], "session_id": SESSION, "speaker_id": "100001",
            "original_text": text, "normed_text": text, "decoded": text, "start": f"{start:.2f}", "end": f"{end:.2f}",
            "cer": "0.0", "wer": "0.0", "vad": repr(vad), "split": split, "gender": "female"}


def official_root(tmp_path: Path, audio: np.ndarray, tables: dict[str, list[dict[str, str]]]) -> Path:
    """One session and each language's table as the corpus's own tools leave them (raw_audios/, transcribed_data/)."""
    root = tmp_path / "official"
    ogg = root / "raw_audios/original/2019" / f"{SESSION}_original.ogg"
    ogg.parent.mkdir(parents=True)
    soundfile.write(ogg, audio, RATE, format="OGG", subtype="VORBIS")
    for lang, table in tables.items():
        (root / "transcribed_data" / lang).mkdir(parents=True)
        write_rows(root / "transcribed_data" / lang / f"asr_{lang}.tsv.gz", "|", table)
    return root


def test_vad_pieces_are_joined_without_what_lies_between_them(tmp_path, capsys):
    audio = session_with_a_loud_gap()
    table = [asr_row("de_20190115-09:00:00_1", [[0.5, 2.0], [3.0, 4.5]], "train"),   # the loud tone between
             asr_row("de_20190115-09:00:05_2", [[5.0, 6.0]], "dev"),
             asr_row("de_20190115-09:00:06_3", [[6.0, 7.0], [7.0, 7.5]], "test"),   # touching: one segment
             asr_row("de_20190115-09:00:07_4", [[7.5, 7.9]], "train", text=" ")]    # no transcript
    root = official_root(tmp_path, audio, {"de": table})
    rc, out, err = run(capsys, "prepare", "--root", str(root), "--out", str(tmp_path / "out"), "--what", "asr",
                       "--langs", "de", "--years", "2019", "--no-progress")
    assert rc == 0, err
    assert ("prepare_voxpopuli: de: kept 3 (train 1, dev 1, test 1; 1 joined from VAD pieces); "
            "dropped 1 (empty transcript 1)") in out.splitlines()

    [utt] = DataDir(tmp_path / "out" / "train").validate()
    assert utt.wav == str((tmp_path / "out" / "joined_audio/de/2019" / f"{utt.id}.flac").resolve())
    wave = load_audio(utt.wav, utt=utt.id, segment=utt.segment).numpy()
    assert wave.size == (2.0 - 0.5 + 4.5 - 3.0) * RATE          # the sum of the pieces
    assert np.abs(wave).max() < 0.3                                # not the 0.9 tone between them
    expected = np.concatenate([audio[8000:32000], audio[48000:72000]])
    assert np.corrcoef(wave, expected)[0, 1] > 0.95
    [test] = DataDir(tmp_path / "out" / "test")
    assert (test.segment.recording, test.segment.start, test.segment.end) == (f"{SESSION}_original", 6.0, 7.5)

    # A rerun keeps the joined file; the summary is the same.
    mtime = Path(utt.wav).stat().st_mtime_ns
    rc, again, _ = run(capsys, "prepare", "--root", str(root), "--out", str(tmp_path / "out"), "--what", "asr",
                       "--langs", "de", "--years", "2019", "--no-progress")
    assert rc == 0 and again == out and Path(utt.wav).stat().st_mtime_ns == mtime


def test_a_language_left_without_utterances_is_an_error(tmp_path, capsys):
    rows = {lang: [asr_row(f"{lang}_20190115-09:00:0{i}_{i}", [[i, i + 0.5]], split, text="" if lang == "de" else "x")
                   for i, split in enumerate(ASR_SPLITS)] for lang in ("de", "fr")}
    root = official_root(tmp_path, session_with_a_loud_gap(), rows)
    rc, _, err = run(capsys, "prepare", "--root", str(root), "--out", str(tmp_path / "out"), "--what", "asr",
                     "--langs", "de,fr", "--years", "2019", "--no-progress")
    assert rc == 1 and "no asr utterances left of language(s) de (kept 0" in err and "empty transcript 3" in err


def test_an_archive_cut_between_members_is_named_then_fetched_again_by_the_download_stage(fixture_tree, tmp_path,
                                                                                          capsys):
    """A tar cut at a member boundary extracts without an error, less its later members; the download
    stage then had nothing to do (the file was present). Now extraction names it and says what to run,
    and the download stage sees it differs from the source and fetches it again."""
    import tarfile

    from mslam.data.download import download_all
    root = download(fixture_tree, tmp_path)
    tar = root / "audios/original_2020.tar"
    with tarfile.open(tar) as t:
        [ogg] = [m for m in t if m.isfile()]
    tar.write_bytes(tar.read_bytes()[:ogg.offset])   # the folders only: the session's audio is gone
    message = fails(capsys, root, tmp_path / "out", "asr")
    assert f"{tar}: cannot extract (no end-of-archive block after the last member" in message
    assert f"delete {tar} and run the recipe's download stage (./run.sh --stage 1 --stop-stage 1" in message

    files = [f"audios/original_{year}.tar" for year in YEARS.split(",")]
    assert download_all(fixture_tree / "voxpopuli", files, root, progress=False)["fetched"] == 1
    prepare(capsys, root, tmp_path / "out", "asr", "--langs", LANGS)
    assert len(DataDir(tmp_path / "out" / "test").validate()) == 3
