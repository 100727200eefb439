"""Audio loading: formats, pipes, segments, resampling, and a clear error for each bad input."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch

from mslam.data.audio import AudioError, load_audio, read_audio
from mslam.data.kaldi import DataDir, Segment


@pytest.fixture(scope="module")
def speech(spoken_dir):
    utt = DataDir(spoken_dir).utterance("de-a-001")
    samples, rate = read_audio(utt.wav)
    return samples, rate, utt.wav


def test_reads_espeak_speech(speech):
    samples, rate, _ = speech
    assert rate == 22050 and samples.dtype == np.float32
    assert 0.3 < samples.size / rate < 3.0
    assert np.sqrt(np.mean(samples ** 2)) > 0.01  # not silence


@pytest.mark.parametrize("fmt, subtype, tol", [("FLAC", "PCM_16", 1e-9), ("OGG", "VORBIS", 0.1), ("MP3", "MPEG_LAYER_III", 0.2)])
def test_compressed_formats(tmp_path, speech, fmt, subtype, tol):
    samples, rate, _ = speech
    path = tmp_path / f"x.{fmt.lower()}"
    soundfile.write(path, samples, rate, format=fmt, subtype=subtype)
    decoded = load_audio(str(path), sample_rate=rate)
    reference = torch.from_numpy(samples)
    n = min(decoded.numel(), reference.numel())
    if fmt == "FLAC":
        assert decoded.numel() == reference.numel()
    # lossy codecs: the signal is still the same speech (high correlation), not garbage
    corr = np.corrcoef(decoded[:n].numpy(), reference[:n].numpy())[0, 1] if fmt != "FLAC" else 1.0
    assert (decoded[:n] - reference[:n]).abs().max() <= tol + 1e-4 or corr > 0.9


def test_pipe_entry_and_resample(tmp_path, speech):
    samples, rate, wav = speech
    direct = load_audio(wav)
    piped = load_audio(f"cat {wav} |")
    assert torch.equal(direct, piped)
    assert abs(direct.numel() - round(samples.size * 16000 / rate)) <= 1


def test_8khz_is_resampled_to_16khz(tmp_path, speech):
    samples, rate, _ = speech
    import torchaudio.functional as AF
    low = AF.resample(torch.from_numpy(samples), rate, 8000).numpy()
    soundfile.write(tmp_path / "tel.wav", low, 8000, subtype="PCM_16")
    wave = load_audio(str(tmp_path / "tel.wav"))
    assert abs(wave.numel() - 2 * low.size) <= 1
    with pytest.raises(AudioError, match="is at 8000 Hz; expected 16000 Hz"):
        load_audio(str(tmp_path / "tel.wav"), utt="u1", allow_resample=False)


def test_segment_cut(speech):
    _, _, wav = speech
    full = load_audio(wav)
    part = load_audio(wav, segment=Segment("rec", 0.25, 0.5))
    assert part.numel() == 4000
    # the cut is made at the source rate (a fraction of a sample away), so compare shapes, not samples
    assert np.corrcoef(part[100:-100].numpy(), full[4100:7900].numpy())[0, 1] > 0.98
    with pytest.raises(AudioError, match="segment starts at 99.00 s"):
        load_audio(wav, utt="u9", segment=Segment("rec", 99.0, 100.0))


def test_stereo_is_averaged_to_mono(tmp_path):
    left, right = np.full(1600, 0.5, np.float32), np.full(1600, -0.25, np.float32)
    soundfile.write(tmp_path / "st.wav", np.stack([left, right], 1), 16000, subtype="FLOAT")
    assert torch.allclose(load_audio(str(tmp_path / "st.wav")), torch.full((1600,), 0.125))


def test_bad_inputs_name_the_utterance(tmp_path, speech):
    _, _, wav = speech
    (tmp_path / "garbage.wav").write_bytes(b"RIFF not really a wav file")
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    soundfile.write(tmp_path / "nan.wav", np.array([0.1, np.nan, 0.2] * 100, np.float32), 16000, subtype="FLOAT")
    data = open(wav, "rb").read()
    soundfile.write(tmp_path / "full.flac", read_audio(wav)[0], 22050, format="FLAC")
    flac = (tmp_path / "full.flac").read_bytes()
    (tmp_path / "trunc.flac").write_bytes(flac[: len(flac) // 3])
    cases = {
        str(tmp_path / "missing.wav"): "audio file .* not found",
        str(tmp_path / "garbage.wav"): "cannot decode",
        str(tmp_path / "empty.wav"): r"holds no samples \(empty audio\)",
        str(tmp_path / "nan.wav"): "100 NaN/inf sample",
        "false |": "command 'false' exited with 1",
        "true |": "command 'true' wrote no audio",
    }
    for entry, message in cases.items():
        with pytest.raises(AudioError, match=f"utterance 'utt7': .*{message}"):
            load_audio(entry, utt="utt7")
    assert len(data) > 1000
    # A truncated flac either raises a clear error or decodes to a shorter signal: never garbage.
    try:
        cut = load_audio(str(tmp_path / "trunc.flac"), sample_rate=22050)
        assert cut.numel() < read_audio(wav)[0].size
    except AudioError as e:
        assert "utt" in str(e) or "trunc.flac" in str(e)


@pytest.mark.parametrize("fmt, subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS")])
def test_a_segment_of_a_file_is_read_alone_and_equals_the_cut_of_the_whole(tmp_path, speech, fmt, subtype):
    samples, rate, _ = speech
    path = tmp_path / f"session.{fmt.lower()}"
    soundfile.write(path, np.concatenate([samples] * 3), rate, format=fmt, subtype=subtype)
    segment = Segment("rec", 0.6, 1.7)
    whole, _ = read_audio(f"cat {path} |")           # a pipe is decoded whole, then cut
    start, stop = round(0.6 * rate), round(1.7 * rate)
    part, part_rate = read_audio(str(path), "u1", segment)
    assert part_rate == rate and part.size == stop - start
    np.testing.assert_allclose(part, whole[start:stop], atol=1e-6)
    piped, _ = read_audio(f"cat {path} |", "u1", segment)
    np.testing.assert_array_equal(piped, whole[start:stop])
    with pytest.raises(AudioError, match="segment starts at 99.00 s"):
        read_audio(str(path), "u9", Segment("rec", 99.0, 100.0))
