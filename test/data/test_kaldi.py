"""Kaldi data dirs: reading, writing, validation and the repair/subset/combine utilities."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from mslam.data.kaldi import (DataDir, DataDirError, Segment, Utterance, atomic_write_bytes, combine_data_dirs,
                              fix_data_dir, read_table, subset_data_dir, write_data_dir, write_table)


def make_dir(path: Path, n: int = 6, langs=("de", "fr")) -> Path:
    utts = [Utterance(id=f"spk{i % 3}-{i:03d}", wav=f"/audio/{i}.wav", text=f"hallo {i}", speaker=f"spk{i % 3}",
                      lang=langs[i % len(langs)], translations={"en": f"hello {i}"}) for i in range(n)]
    write_data_dir(path, utts)
    return path


def test_roundtrip_all_tables(tmp_path):
    utts = [Utterance(id="a-1", wav="x.wav", segment=Segment("rec1", 0.5, 1.25), text="eins zwei", speaker="a",
                      lang="de", intent="balance", translations={"en": "one two"}, num_samples=12000),
            Utterance(id="a-2", wav="x.wav", segment=Segment("rec1", 1.25, 2.0), text="drei", speaker="a",
                      lang="de", intent="transfer", translations={"en": "three"}, num_samples=12000)]
    write_data_dir(tmp_path / "d", utts)
    d = DataDir(tmp_path / "d").validate()
    assert d.utt_ids == ["a-1", "a-2"]
    assert list(d) == utts
    assert (tmp_path / "d" / "spk2utt").read_text() == "a a-1 a-2\n"
    assert read_table(tmp_path / "d" / "wav.scp") == {"rec1": "x.wav"}


def test_tables_are_written_in_c_locale_order(tmp_path):
    write_table(tmp_path / "t", {"b": 1, "B": 2, "a-10": 3, "a-2": 4})
    assert [line.split()[0] for line in (tmp_path / "t").read_text().splitlines()] == ["B", "a-10", "a-2", "b"]


@pytest.mark.parametrize("content, message", [
    ("utt1\n", "t:1: id 'utt1' has no value"),
    ("u1 a\n\nu2 b\n", "t:2: empty line"),
    ("u1 a\nu1 b\n", "t:2: duplicate id 'u1' (first on line 1)"),
    ("u2 a\nu1 b\n", "t:2: id 'u1' is out of order after 'u2'"),
])
def test_malformed_tables_name_file_and_line(tmp_path, content, message):
    (tmp_path / "t").write_text(content)
    with pytest.raises(DataDirError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_table(tmp_path / "t")


def test_non_utf8_names_line_and_byte(tmp_path):
    (tmp_path / "text").write_bytes("u1 gut\nu2 gr".encode() + b"\xfc" + b"n\n")
    with pytest.raises(DataDirError, match=r"text:2: not valid UTF-8 \(byte 0xfc at column 6\)"):
        read_table(tmp_path / "text")


def test_malformed_segments(tmp_path):
    d = make_dir(tmp_path / "d")
    (d / "segments").write_text("spk0-000 rec 1.0\n")
    with pytest.raises(DataDirError, match=r"segments:1: expected '<utt-id> <rec-id> <start> <end>'"):
        DataDir(d)
    (d / "segments").write_text("spk0-000 rec 2.0 1.0\n")
    with pytest.raises(DataDirError, match="start 2.0 and end 1.0"):
        DataDir(d)


def test_bad_numeric_table(tmp_path):
    d = make_dir(tmp_path / "d", n=2)
    write_table(d / "utt2num_samples", {"spk0-000": "16000", "spk1-001": "lots"})
    with pytest.raises(DataDirError, match="utt2num_samples:2: 'spk1-001' has value 'lots'"):
        DataDir(d)


def test_mismatched_tables_are_reported_and_fixed(tmp_path):
    d = make_dir(tmp_path / "d")
    text = read_table(d / "text")
    del text["spk1-004"]
    write_table(d / "text", text)
    write_table(d / "utt2lang", {**read_table(d / "utt2lang"), "zz-999": "de"})
    problems = "\n".join(DataDir(d).problems())
    assert "/text: 2 utterance(s) that other tables have are missing, e.g. 'spk1-004'" in problems
    assert "/wav.scp: 1 utterance(s) that other tables have are missing, e.g. 'zz-999'" in problems
    assert "/utt2lang:" not in problems
    assert "/utt2spk: 1 utterance(s) that other tables have are missing, e.g. 'zz-999'" in problems
    with pytest.raises(DataDirError, match="invalid data dir"):
        DataDir(d).validate()
    # fix keeps the utterances present everywhere, and reports how many it dropped
    assert fix_data_dir(d) == {"kept": 5, "dropped": 2}
    fixed = DataDir(d).validate()
    assert "spk1-004" not in fixed.utt_ids and "zz-999" not in fixed.tables["utt2lang"]
    assert "spk1-004" not in (d / "spk2utt").read_text()


def test_fix_sorts_unsorted_tables(tmp_path):
    d = make_dir(tmp_path / "d", n=3)
    lines = (d / "text").read_text().splitlines()
    (d / "text").write_text("\n".join(reversed(lines)) + "\n")
    with pytest.raises(DataDirError, match="out of order"):
        DataDir(d)
    assert fix_data_dir(d) == {"kept": 3, "dropped": 0}
    assert (d / "text").read_text().splitlines() == lines


def test_stale_spk2utt_is_a_problem(tmp_path):
    d = make_dir(tmp_path / "d")
    (d / "spk2utt").write_text("spk0 spk0-000\n")
    assert any("spk2utt: does not match utt2spk" in p for p in DataDir(d).problems())


def test_subset_modes(tmp_path):
    d = make_dir(tmp_path / "d", n=10)
    assert subset_data_dir(d, tmp_path / "first", first=3) == 3
    assert DataDir(tmp_path / "first").validate().utt_ids == DataDir(d).utt_ids[:3]
    assert subset_data_dir(d, tmp_path / "r1", random_n=4, seed=1) == 4
    assert subset_data_dir(d, tmp_path / "r2", random_n=4, seed=1) == 4
    assert DataDir(tmp_path / "r1").utt_ids == DataDir(tmp_path / "r2").utt_ids
    assert subset_data_dir(d, tmp_path / "fr", langs=["fr"]) == 5
    assert set(DataDir(tmp_path / "fr").validate().tables["utt2lang"].values()) == {"fr"}
    assert subset_data_dir(d, tmp_path / "pl", per_lang=2) == 4
    assert subset_data_dir(d, tmp_path / "ids", utt_list=["spk0-000", "spk2-005"]) == 2
    assert DataDir(tmp_path / "ids").tables["text.en"] == {"spk0-000": "hello 0", "spk2-005": "hello 5"}
    with pytest.raises(DataDirError, match="1 requested id"):
        subset_data_dir(d, tmp_path / "bad", utt_list=["nope"])


def test_per_language_subset_is_random_and_spread_over_speakers(tmp_path):
    # 3 languages x 4 speakers x 10 utterances; ids sort by speaker, as Kaldi dirs do
    utts = [Utterance(id=f"{lang}-s{s}-{i:03d}", wav=f"/a/{lang}{s}{i}.wav", text="x", speaker=f"{lang}-s{s}",
                      lang=lang) for lang in ("de", "fr", "ru") for s in range(4) for i in range(10)]
    write_data_dir(tmp_path / "src", utts)
    picked = {}
    for seed in (0, 1):
        assert subset_data_dir(tmp_path / "src", tmp_path / f"few{seed}", per_lang=6, seed=seed) == 18
        d = DataDir(tmp_path / f"few{seed}").validate()
        picked[seed] = set(d.utt_ids)
        per_lang = Counter(d.tables["utt2lang"].values())
        per_speaker = Counter(d.tables["utt2spk"].values())
        assert per_lang == {"de": 6, "fr": 6, "ru": 6}
        # every speaker of a language gives 1 or 2 of its 6 (a "first 6" cut would take one speaker)
        assert len(per_speaker) == 12 and set(per_speaker.values()) <= {1, 2}
    assert picked[0] != picked[1]  # the seed draws
    subset_data_dir(tmp_path / "src", tmp_path / "again", per_lang=6, seed=0)
    assert set(DataDir(tmp_path / "again").utt_ids) == picked[0]  # ... and only the seed
    # more than a language has: all of it
    assert subset_data_dir(tmp_path / "src", tmp_path / "all", per_lang=100) == 120


def test_combine(tmp_path):
    a = make_dir(tmp_path / "a", n=4)
    b = tmp_path / "b"
    write_data_dir(b, [Utterance(id=f"x-{i}", wav=f"/b/{i}.wav", text="t", speaker="x", lang="ru",
                                 translations={"en": "t"}) for i in range(3)])
    assert combine_data_dirs(tmp_path / "ab", [a, b]) == 7
    assert DataDir(tmp_path / "ab").validate().tables["utt2lang"]["x-2"] == "ru"
    with pytest.raises(DataDirError, match="is also in an earlier input"):
        combine_data_dirs(tmp_path / "aa", [a, a])
    (b / "text.en").unlink()
    with pytest.raises(DataDirError, match="has tables"):
        combine_data_dirs(tmp_path / "ab2", [a, b])


def test_cli_validate_and_fix(tmp_path):
    d = make_dir(tmp_path / "d")
    (d / "utt2lang").write_text("spk0-000 de\n")
    run = lambda *a: subprocess.run([sys.executable, "-m", "mslam.bin.data_dir", *a], capture_output=True, text=True)
    r = run("validate", str(d))
    assert r.returncode == 1 and "utt2lang: 5 utterance(s) that other tables have are missing" in r.stderr
    r = run("fix", str(d))
    assert r.returncode == 0 and "kept 1 utterances, dropped 5" in r.stdout
    assert run("validate", str(d)).returncode == 0


def test_write_is_atomic(tmp_path, monkeypatch):
    write_table(tmp_path / "t", {"a": 1})

    def explode(*_):
        raise OSError("disk full")
    monkeypatch.setattr("os.replace", explode)
    with pytest.raises(OSError):
        write_table(tmp_path / "t", {"b": 2})
    assert (tmp_path / "t").read_text() == "a 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_get_the_mode_open_gives(tmp_path, umask):
    # Prepared tables are shared between users: not the 0600 of a private temporary file.
    previous = os.umask(umask)
    try:
        write_table(tmp_path / "t", {"a": 1})
        atomic_write_bytes(tmp_path / "b", b"x")
    finally:
        os.umask(previous)
    for name in ("t", "b"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask


def test_durations_come_from_the_decoded_audio_once(spoken_dir, tmp_path):
    import shutil

    import soundfile
    d = tmp_path / "d"
    shutil.copytree(spoken_dir, d)
    run = [sys.executable, "-m", "mslam.bin.data_dir", "validate", "--add-durations", str(d)]
    r = subprocess.run(run, capture_output=True, text=True)
    assert r.returncode == 0 and "wrote utt2dur" in r.stdout, r.stderr
    table = DataDir(d).validate().tables["utt2dur"]
    for utt, wav in DataDir(d).tables["wav.scp"].items():
        info = soundfile.info(wav)
        assert float(table[utt]) == pytest.approx(info.frames / info.samplerate, abs=1e-4)
    stamp = (d / "utt2dur").stat().st_mtime_ns
    r = subprocess.run(run, capture_output=True, text=True)   # has lengths now: nothing to do
    assert r.returncode == 0 and "valid, 4 utterances" in r.stdout and "wrote utt2dur" not in r.stdout
    assert (d / "utt2dur").stat().st_mtime_ns == stamp
    (d / "utt2dur").unlink()
    bad = tmp_path / "bad.wav"   # (the session's audio files are shared: point at a broken copy instead)
    bad.write_bytes(b"not audio")
    scp = DataDir(d).tables["wav.scp"]
    write_table(d / "wav.scp", {**scp, next(iter(scp)): str(bad)})
    r = subprocess.run(run, capture_output=True, text=True)
    assert r.returncode == 1 and f"cannot decode '{bad}'" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([*run[:-1], "--quick", str(d)], capture_output=True, text=True)
    assert r.returncode == 1 and f"{bad} has no readable audio header" in r.stderr and "Traceback" not in r.stderr
