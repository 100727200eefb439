"""`data_dir validate [--add-durations]` and `data_dir scripts` read a dir as a stream: they name what
DataDir(...).validate() names, and peak memory does not grow with the utterances (a dir of 100 M
utterances does not fit in memory as tables)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from mslam.data.corpora.common import iter_data_dir
from mslam.data.kaldi import DataDir, DataDirError, Utterance, write_data_dir

RATE = 16000
SPEAKERS = 50


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


# ---- memory ----------------------------------------------------------------------------------

# `python -m mslam.bin.data_dir ARGS` in this fresh process, then its own peak RSS (VmHWM).
CHILD = ("import sys, runpy; sys.argv[0] = 'data_dir'; rc = 0\n"
         "try:\n    runpy.run_module('mslam.bin.data_dir', run_name='__main__')\n"
         "except SystemExit as e:\n    rc = e.code or 0\n"
         "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
         "print('VMHWM_KB', hwm); sys.exit(rc)")


def run_data_dir(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    """The command's result and its peak RSS in MB."""
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    kb = next(int(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("VMHWM_KB"))
    return proc, kb / 1024


def linked_dir(work: Path, n_utts: int) -> Path:
    """n_utts utterances of SPEAKERS speakers, each its own name hard-linked to one 10 ms WAV file."""
    audio = work / "tiny.wav"
    if not audio.exists():
        soundfile.write(audio, np.full(RATE // 100, 0.1, dtype=np.float32), RATE, subtype="PCM_16")
    d, wavs = work / f"d{n_utts}", work / f"wav{n_utts}"
    d.mkdir()
    wavs.mkdir()
    utts = sorted(f"spk{i % SPEAKERS:02d}-{i:07d}" for i in range(n_utts))
    with open(d / "wav.scp", "w") as scp, open(d / "utt2spk", "w") as spk, open(d / "text", "w") as text:
        for utt in utts:
            os.link(audio, wavs / f"{utt}.wav")
            scp.write(f"{utt} {wavs / utt}.wav\n")
            spk.write(f"{utt} {utt.split('-')[0]}\n")
            text.write(f"{utt} hallo welt\n")
    with open(d / "spk2utt", "w") as f:
        for s in range(SPEAKERS):
            f.write(f"spk{s:02d} {' '.join(u for u in utts if u.startswith(f'spk{s:02d}-'))}\n")
    return d


def test_durations_and_scripts_peak_alike_at_2k_and_12k_utterances_and_bad_audio_stops_it(tmp_path):
    """Headers only (--quick) for the peaks, to keep it a few seconds: the stream, the threads' window and
    the writer are those of the decoding path, which then runs on the 2k dir. Before the dirs were
    streamed: 42 and 72 MB (95 MB at 20k); streamed: 40 MB all three."""
    small, large = linked_dir(tmp_path, 2000), linked_dir(tmp_path, 12000)
    peaks = {}
    for d in (small, large):
        proc, peaks[d.name] = run_data_dir("validate", "--add-durations", "--quick", "--nj", "2", str(d))
        assert proc.returncode == 0 and "wrote utt2dur" in proc.stdout, proc.stderr
        utts = [line.split()[0] for line in lines_of(d / "text")]
        assert (d / "utt2dur").read_text() == "".join(f"{u} 0.0100\n" for u in utts)   # write_table's bytes
    assert peaks["d12000"] < 1.1 * peaks["d2000"], peaks
    for d in (small, large):   # the check of transcripts (before: 22 and 35 MB at 2k and 20k)
        proc, peaks[d.name] = run_data_dir("scripts", str(d))
        assert proc.returncode == 0 and f"0 of {d.name[1:]} utterances" in proc.stdout, proc.stderr
    assert peaks["d12000"] < 1.1 * peaks["d2000"], peaks

    (small / "utt2dur").unlink()
    utts = [line.split()[0] for line in lines_of(small / "text")]
    for utt in utts[100:125]:   # 25 unusable files, in the middle of the dir
        path = tmp_path / "wav2000" / f"{utt}.wav"
        path.unlink()
        path.write_bytes(b"not audio")
    proc, _ = run_data_dir("validate", "--add-durations", "--nj", "2", str(small))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{small}: 25 of 2000 utterance(s) have unusable audio, so no utt2dur was written" in proc.stderr
    assert f"cannot decode '{tmp_path / 'wav2000' / utts[100]}.wav'" in proc.stderr
    assert "... and 5 more" in proc.stderr and f"utterance '{utts[120]}'" not in proc.stderr
    assert sorted(p.name for p in small.iterdir()) == ["spk2utt", "text", "utt2spk", "wav.scp"]


def test_checking_scripts_streams_and_counts_as_before(tmp_path, capsys):
    from mslam.bin.data_dir import main
    d = small_dir(tmp_path)
    (d / "text").write_text("s0-u0 gut\ns0-u2 \u0430pfel\ns0-u4 \ns1-u1 a\ns1-u3 b\ns1-u5 c\n", encoding="utf-8")
    assert main(["scripts", "--action", "fail", str(d)]) == 1
    out, err = capsys.readouterr()
    assert "2 of 6 utterances have an empty transcript (1) or characters outside their language's scripts (1): " \
           "refused" in out
    assert f"{d / 'text'}: utterance 's0-u2' (de)" in err


def test_the_threads_take_a_bounded_window_of_work_ahead():
    from mslam.data.kaldi import IN_FLIGHT_PER_THREAD, map_in_order
    taken = []

    def items():
        for i in range(200):
            taken.append(i)
            yield i
    for i, (item, result) in enumerate(map_in_order(lambda x: x * x, items(), nj=3)):
        assert (item, result) == (i, i * i) and len(taken) - i <= IN_FLIGHT_PER_THREAD * 3
    assert len(taken) == 200
