"""`data_dir validate [--add-durations]` and `data_dir scripts` read a dir as a stream: they name what
DataDir(...).validate() names, and peak memory does not grow with the utterances (a dir of 100 M
utterances does not fit in memory as tables)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from mslam.data.corpora.common import iter_data_dir
from mslam.data.kaldi import DataDir, DataDirError, Utterance, write_data_dir


def datadir_error(d: Path) -> str:
    try:
        DataDir(d).validate()
    except DataDirError as e:
        return str(e)
    return ""


def streamed_error(d: Path) -> str:
    """The stream's error, less the hint on what to run that it adds to DataDir's lines."""
    try:
        list(iter_data_dir(d))
    except DataDirError as e:
        return re.sub(r" \(keep only [^)]*\)", "", str(e))
    return ""


def small_dir(tmp_path: Path, segments: bool = False) -> Path:
    d = tmp_path / "d"
    write_data_dir(d, [Utterance(id=f"s{i % 2}-u{i}", wav=f"/a/r{i // 2}.wav", text=f"t {i}", speaker=f"s{i % 2}",
                                 lang="de") for i in range(6)])
    if segments:   # the utterances become segments of three recordings
        (d / "wav.scp").write_text("".join(f"r{r} /a/r{r}.wav\n" for r in range(3)))
        (d / "segments").write_text("".join(f"s{i % 2}-u{i} r{i // 2} 0.0 1.0\n" for i in sorted(
            range(6), key=lambda i: f"s{i % 2}-u{i}")))
    return d


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def drop_line(name: str, index: int):
    def damage(d: Path) -> None:
        rows = lines_of(d / name)
        (d / name).write_text("".join(rows[:index] + rows[index + 1:]), encoding="utf-8")
    return damage


def append_line(name: str, line: str):
    def damage(d: Path) -> None:
        (d / name).write_text("".join(lines_of(d / name)) + line, encoding="utf-8")
    return damage


def both(*damages):
    def damage(d: Path) -> None:
        for f in damages:
            f(d)
    return damage


def split_a_speaker(d: Path) -> None:
    """s0 on two lines of spk2utt, s1 between them: a repeat only a reader holding the speakers sees."""
    s0, s1 = lines_of(d / "spk2utt")
    first, *rest = s0.split()[1:]
    (d / "spk2utt").write_text(f"s0 {first}\n{s1}s0 {' '.join(rest)}\n", encoding="utf-8")


@pytest.mark.parametrize("segments, damage", [
    (False, drop_line("text", 1)),
    (False, both(drop_line("text", 1), drop_line("text", 2), append_line("utt2lang", "zz-9 de\n"))),
    (False, drop_line("wav.scp", 0)),
    (False, append_line("wav.scp", "zz-9\n")),                 # malformed past the last utterance
    (False, drop_line("spk2utt", 0)),
    (False, split_a_speaker),
    (False, both(drop_line("utt2spk", 0), drop_line("spk2utt", 0))),
    (True, drop_line("wav.scp", 1)),                           # segments naming a missing recording
    (True, both(drop_line("wav.scp", 0), drop_line("utt2lang", 3))),
    (True, lambda d: (d / "segments").write_text("s0-u0 r0 0.0 1.0\ns0-u2 r1 2.0 1.0\n")),
    (False, lambda d: (d / "text").write_text("s0-u2 t\ns0-u0 t\n")),
])
def test_the_stream_names_what_datadir_names(tmp_path, segments, damage):
    d = small_dir(tmp_path, segments)
    damage(d)
    expected = datadir_error(d)
    assert expected and streamed_error(d) == expected


def test_an_intact_dir_and_one_that_is_not_a_dir(tmp_path):
    d = small_dir(tmp_path, segments=True)
    assert streamed_error(d) == "" and [utt for utt, _ in iter_data_dir(d)] == DataDir(d).utt_ids
    assert streamed_error(tmp_path / "nowhere") == datadir_error(tmp_path / "nowhere") != ""


def test_validate_names_a_missing_utterance_with_what_to_run(tmp_path, capsys):
    from mslam.bin.data_dir import main
    d = small_dir(tmp_path)
    assert main(["validate", str(d)]) == 0
    assert f"{d}: valid, 6 utterances, tables: wav.scp text utt2spk utt2lang" in capsys.readouterr().out
    drop_line("utt2lang", 0)(d)
    assert main(["validate", "--add-durations", str(d)]) == 1
    assert (f"{d / 'utt2lang'}: 1 utterance(s) that other tables have are missing, e.g. 's0-u0' (keep only the "
            f"utterances all tables have: python -m mslam.bin.data_dir fix DIR)") in capsys.readouterr().err
    assert not (d / "utt2dur").exists()


def test_checking_scripts_streams_and_counts_as_before(tmp_path, capsys):
    from mslam.bin.data_dir import main
    d = small_dir(tmp_path)
    (d / "text").write_text("s0-u0 gut\ns0-u2 \u0430pfel\ns0-u4 \ns1-u1 a\ns1-u3 b\ns1-u5 c\n", encoding="utf-8")
    assert main(["scripts", "--action", "fail", str(d)]) == 1
    out, err = capsys.readouterr()
    assert "2 of 6 utterances have an empty transcript (1) or characters outside their language's scripts (1): " \
           "refused" in out
    assert f"{d / 'text'}: utterance 's0-u2' (de)" in err
