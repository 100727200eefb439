"""Bad audio: each wav.scp / feats.scp entry that cannot be used is answered by an AudioError naming the
utterance and the entry; audio that can be used (stereo, another rate) is converted as documented."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch

from mslam.data.audio import AudioError, load_audio
from mslam.data.features import load_features
from mslam.data.kaldi import Segment, Utterance

RATE = 16000


def tone(seconds: float = 1.0, rate: int = RATE, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_a_missing_audio_file_is_named(tmp_path):
    with pytest.raises(AudioError, match=r"utterance 'u1': audio file '.*gone\.wav' not found"):
        load_features(Utterance(id="u1", wav=str(tmp_path / "gone.wav")))


def test_empty_audio_is_named(tmp_path):
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), RATE)
    with pytest.raises(AudioError, match=r"utterance 'u1': '.*empty\.wav' holds no samples \(empty audio\)"):
        load_audio(str(tmp_path / "empty.wav"), utt="u1")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_samples_are_named(tmp_path, bad):
    x = tone()
    x[[10, 500]] = bad
    soundfile.write(tmp_path / "bad.wav", x, RATE, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"utterance 'u1': '.*bad\.wav' has 2 NaN/inf sample\(s\)"):
        load_audio(str(tmp_path / "bad.wav"), utt="u1")


def test_8khz_is_refused_when_resampling_is_not_allowed_and_resampled_otherwise(tmp_path):
    soundfile.write(tmp_path / "tel.wav", tone(1.0, 8000), 8000, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"utterance 'u1': '.*tel\.wav' is at 8000 Hz; expected 16000 Hz"):
        load_audio(str(tmp_path / "tel.wav"), utt="u1", allow_resample=False)
    wave = load_audio(str(tmp_path / "tel.wav"), utt="u1")
    assert wave.numel() == 16000
    # still the same 440 Hz tone after resampling
    spectrum = torch.fft.rfft(wave).abs()
    assert int(spectrum.argmax()) == 440


def test_stereo_is_averaged_to_mono(tmp_path):
    left, right = tone(0.5, freq=300), tone(0.5, freq=700)
    soundfile.write(tmp_path / "st.wav", np.stack([left, right], axis=1), RATE, subtype="FLOAT")
    wave = load_audio(str(tmp_path / "st.wav"), utt="u1")
    assert wave.dim() == 1 and torch.allclose(wave, torch.from_numpy((left + right) / 2), atol=1e-7)


@pytest.mark.parametrize("fmt, cut", [("FLAC", "half"), ("FLAC", "header"), ("OGG", "half"), ("OGG", "header")])
def test_a_truncated_compressed_file_is_named(tmp_path, fmt, cut):
    path = tmp_path / f"a.{fmt.lower()}"
    soundfile.write(path, tone(2.0), RATE, format=fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if cut == "half" else data[:200])
    with pytest.raises(AudioError, match=rf"utterance 'u1': .*'{path}'"):
        load_audio(str(path), utt="u1")


def test_a_truncated_wav_is_named(tmp_path):
    path = tmp_path / "cut.wav"
    soundfile.write(path, tone(2.0), RATE, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="utterance 'u1'"):
        load_audio(str(path), utt="u1")


def test_an_unreadable_audio_header_while_building_the_manifest_is_named(tmp_path):
    from mslam.data.kaldi import DataDirError
    from mslam.data.manifest import speech_manifest
    from reliability_utils import synthetic_data_dir
    d = synthetic_data_dir(tmp_path)
    (tmp_path / "data_audio" / "u2.wav").write_text("not audio\n")
    with pytest.raises((AudioError, DataDirError), match="utterance 'u2'"):
        speech_manifest(d)


def test_a_file_that_is_not_audio_is_named(tmp_path):
    (tmp_path / "notes.wav").write_text("these are not samples\n")
    with pytest.raises(AudioError, match=r"utterance 'u1': cannot decode '.*notes\.wav'"):
        load_audio(str(tmp_path / "notes.wav"), utt="u1")


def test_audio_shorter_than_one_analysis_window_is_named(tmp_path):
    soundfile.write(tmp_path / "click.wav", tone(0.01), RATE, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"utterance 'u1': 10\.0 ms of audio is shorter than one 25\.0 ms"):
        load_features(Utterance(id="u1", wav=str(tmp_path / "click.wav")))


def test_a_failing_pipe_command_is_named(tmp_path):
    with pytest.raises(AudioError, match=r"utterance 'u1': command 'cat .*missing\.wav' exited with 1: .*No such file"):
        load_audio(f"cat {tmp_path / 'missing.wav'} |", utt="u1")
    with pytest.raises(AudioError, match=r"utterance 'u1': command 'true' wrote no audio"):
        load_audio("true |", utt="u1")


def test_a_segment_past_the_end_of_its_recording_is_named(tmp_path):
    soundfile.write(tmp_path / "rec.wav", tone(1.0), RATE, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"utterance 'u1': segment starts at 5\.00 s but '.*rec\.wav' lasts 1\.00 s"):
        load_audio(str(tmp_path / "rec.wav"), utt="u1", segment=Segment("rec", 5.0, 6.0))


def test_a_bad_ark_offset_in_wav_scp_is_named(tmp_path):
    import kaldiio
    samples = (tone() * 32767).astype(np.int16)
    kaldiio.save_ark(str(tmp_path / "w.ark"), {"u1": (RATE, samples)}, scp=str(tmp_path / "w.scp"))
    with pytest.raises(AudioError, match=r"utterance 'u1': cannot read '.*w\.ark:999999'"):
        load_audio(f"{tmp_path / 'w.ark'}:999999", utt="u1")


def _feats_entry(tmp_path, damage: str) -> str:
    import kaldiio
    kaldiio.save_ark(str(tmp_path / "f.ark"), {"u1": np.zeros((50, 80), dtype=np.float32)}, scp=str(tmp_path / "f.scp"))
    entry = (tmp_path / "f.scp").read_text().split()[1]
    if damage == "missing-ark":
        (tmp_path / "f.ark").unlink()
    elif damage == "truncated-ark":
        data = (tmp_path / "f.ark").read_bytes()
        (tmp_path / "f.ark").write_bytes(data[: len(data) // 2])
    elif damage == "bad-offset":
        entry = entry.rsplit(":", 1)[0] + ":999999"
    return entry


@pytest.mark.parametrize("damage", ["missing-ark", "truncated-ark", "bad-offset"])
def test_a_broken_feats_scp_entry_is_named(tmp_path, damage):
    entry = _feats_entry(tmp_path, damage)
    with pytest.raises(AudioError, match=r"utterance 'u1'.*f\.ark"):
        load_features(Utterance(id="u1", feats=entry))


def test_a_good_feats_scp_entry_loads(tmp_path):
    """The control of the test above: the same entry, undamaged, loads."""
    feats = load_features(Utterance(id="u1", feats=_feats_entry(tmp_path, "none")))
    assert tuple(feats.shape) == (50, 80)


# ---- `data_dir validate --add-durations`: the audio is decoded before its duration is written -------------

def _bad_file(tmp_path, kind: str) -> str:
    """A file training could not use, next to a good one: empty, cut short, or holding NaN samples."""
    if kind == "empty":
        soundfile.write(tmp_path / "bad.wav", np.zeros(0, dtype=np.float32), RATE)
        return "bad.wav"
    if kind == "nan":
        x = tone()
        x[100] = np.nan
        soundfile.write(tmp_path / "bad.wav", x, RATE, subtype="FLOAT")
        return "bad.wav"
    name = "bad.flac" if kind == "cut-flac" else "bad.wav"
    soundfile.write(tmp_path / name, tone(2.0), RATE, subtype="PCM_16")
    data = (tmp_path / name).read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    return name


def _validate(tmp_path, bad: str, *options: str) -> tuple[int, str]:
    from mslam.bin.data_dir import main
    from mslam.data.kaldi import write_data_dir
    soundfile.write(tmp_path / "good.wav", tone(), RATE, subtype="PCM_16")
    write_data_dir(tmp_path / "d", [Utterance(id="u1", wav=str(tmp_path / "good.wav"), speaker="s"),
                                    Utterance(id="u2", wav=str(tmp_path / bad), speaker="s")])
    return main(["validate", "--add-durations", *options, str(tmp_path / "d")]), str(tmp_path / bad)


@pytest.mark.parametrize("kind", ["empty", "cut-wav", "cut-flac", "nan"])
def test_adding_durations_decodes_the_audio_and_names_a_file_training_could_not_use(tmp_path, capsys, kind):
    rc, bad = _validate(tmp_path, _bad_file(tmp_path, kind), "--nj", "2")
    err = capsys.readouterr().err
    assert rc == 1 and "1 of 2 utterance(s) have unusable audio" in err and "Traceback" not in err
    assert f"utterance 'u2': '{bad}'" in err or f"utterance 'u2': cannot decode '{bad}'" in err
    assert not (tmp_path / "d" / "utt2dur").exists()


@pytest.mark.parametrize("kind, found", [("empty", True), ("cut-wav", True), ("nan", False)])
def test_adding_durations_quickly_reads_only_the_headers(tmp_path, capsys, kind, found):
    rc, bad = _validate(tmp_path, _bad_file(tmp_path, kind), "--quick")
    err = capsys.readouterr().err
    assert rc == int(found) and (f"utterance 'u2': '{bad}'" in err) == found
    assert (tmp_path / "d" / "utt2dur").exists() != found
