"""Fbank features: agreement with Kaldi's definition (torchaudio.compliance.kaldi), dumped ark/scp
equal to on-the-fly features (several data dirs in one set of jobs), CMVN statistics, and failures
that name the utterance."""
from __future__ import annotations

import subprocess
import sys

import kaldiio
import numpy as np
import pytest
import torch
import torchaudio.compliance.kaldi as kaldi

from mslam.data.audio import load_audio
from mslam.data.features import CMVNStats, FbankConfig, fbank, load_features, num_frames
from mslam.bin.compute_fbank import effective_jobs, plan_jobs
from mslam.data.kaldi import DataDir, Utterance, read_table, subset_data_dir, write_data_dir


def test_fbank_matches_kaldi_definition(spoken_dir):
    for utt in DataDir(spoken_dir):
        wave = load_audio(utt.wav)
        ours = fbank(wave)
        ref = kaldi.fbank(wave[None] * 32768, num_mel_bins=80, sample_frequency=16000, dither=0.0)
        assert ours.shape == ref.shape == (num_frames(wave.numel()), 80)
        # float32 round-off only shows in near-silent frames, where log energies are tiny
        assert (ours - ref).abs().max() < 5e-3
        assert (ours - ref).abs().mean() < 1e-4


def test_fbank_other_configs_match_kaldi():
    torch.manual_seed(0)
    wave = torch.randn(8000) * 0.1
    cfg = FbankConfig(num_mel_bins=40, frame_length_ms=20, frame_shift_ms=5, low_freq=60, high_freq=-400)
    ref = kaldi.fbank(wave[None] * 32768, num_mel_bins=40, frame_length=20, frame_shift=5, low_freq=60,
                      high_freq=-400, dither=0.0)
    assert torch.allclose(fbank(wave, cfg), ref, atol=1e-3)


def test_too_short_audio_is_refused(tmp_path):
    with pytest.raises(ValueError, match="shorter than one 25.0 ms window"):
        fbank(torch.zeros(100))


def test_cmvn_stats_match_direct_computation():
    rng = np.random.default_rng(0)
    a, b = rng.normal(2, 3, (50, 4)), rng.normal(-1, 0.5, (30, 4))
    s1, s2 = CMVNStats(4), CMVNStats(4)
    s1.add(a)
    s2.add(b)
    s1.merge(s2)
    both = np.concatenate([a, b])
    assert s1.count == 80
    np.testing.assert_allclose(s1.mean, both.mean(0))
    np.testing.assert_allclose(s1.std, both.std(0))
    normed = s1.normalize(torch.from_numpy(both))
    np.testing.assert_allclose(normed.mean(0).numpy(), 0, atol=1e-9)


def run_compute_fbank(*args):
    return subprocess.run([sys.executable, "-m", "mslam.bin.compute_fbank", *map(str, args)],
                          capture_output=True, text=True)


def test_dumped_features_equal_on_the_fly(spoken_dir, tmp_path):
    # Two data dirs share the jobs (one job spans both); each gets its own tables and statistics.
    ids = DataDir(spoken_dir).utt_ids
    subset_data_dir(spoken_dir, tmp_path / "train", utt_list=ids[:3])
    subset_data_dir(spoken_dir, tmp_path / "dev", utt_list=ids[3:])
    r = run_compute_fbank(tmp_path / "train", tmp_path / "dump" / "train", tmp_path / "dev", tmp_path / "dump" / "dev",
                          "--nj", 2, "--min-utts-per-job", 1, "--log-dir", tmp_path / "log")
    assert r.returncode == 0, r.stderr
    assert "3 utterances -> " in r.stdout and "1 utterances -> " in r.stdout
    assert sorted(p.name for p in (tmp_path / "log").iterdir()) == ["fbank.1.log", "fbank.2.log"]
    for name, part in (("train", ids[:3]), ("dev", ids[3:])):
        out = tmp_path / "dump" / name
        dumped = DataDir(out).validate()
        assert dumped.utt_ids == part
        stats = CMVNStats(80)
        for utt in dumped:
            from_ark = load_features(utt)
            on_the_fly = load_features(DataDir(spoken_dir).utterance(utt.id))
            assert (from_ark - on_the_fly).abs().max() <= 1e-4
            assert int(dumped.tables["utt2num_frames"][utt.id]) == from_ark.shape[0]
            stats.add(on_the_fly.numpy())
        merged = CMVNStats.load(out / "cmvn.npz")
        assert merged.count == stats.count
        np.testing.assert_allclose(merged.mean, stats.mean, rtol=1e-6)
        # no per-job leftovers, no temporary files
        assert sorted(p.name for p in out.iterdir() if p.name.startswith("cmvn")) == ["cmvn.npz"]
        assert not [p for p in out.iterdir() if ".tmp" in p.name or p.name.endswith((".1", ".2", ".1.scp", ".2.scp"))]


def test_jobs_are_planned_over_every_data_dir_with_a_floor_of_utterances_per_job():
    # Two dirs of 2 utterances over 3 jobs: none repeated; a job may span two dirs.
    assert plan_jobs([["a1", "a2"], ["b1", "b2"]], 3) == [[(0, ["a1", "a2"])], [(1, ["b1", "b2"])], []]
    assert plan_jobs([["a1", "a2", "a3"], ["b1"]], 2) == [[(0, ["a1", "a2"])], [(0, ["a3"]), (1, ["b1"])]]
    # a job's start-up costs seconds: a few utterances are not worth several processes
    assert effective_jobs(1000, 4, 200) == 4 and effective_jobs(250, 4, 200) == 2 and effective_jobs(3, 4, 200) == 1


def test_bad_audio_fails_or_is_skipped_and_counted(spoken_dir, tmp_path):
    utts = list(DataDir(spoken_dir)) + [Utterance(id="zz-bad", wav=str(tmp_path / "gone.wav"), text="x",
                                                  speaker="zz", lang="de")]
    write_data_dir(tmp_path / "data", utts)
    # five utterances make one job (--min-utts-per-job): one process start-up per run
    r = run_compute_fbank(tmp_path / "data", tmp_path / "dump", "--nj", 2)
    assert r.returncode == 1 and "a job failed" in r.stderr
    log = (tmp_path / "dump" / "log" / "fbank.1.log").read_text()
    assert "utterance 'zz-bad': audio file" in log and "not found" in log
    assert not (tmp_path / "dump" / "feats.scp").exists()
    r = run_compute_fbank(tmp_path / "data", tmp_path / "dump", "--nj", 2, "--on-error", "skip")
    assert r.returncode == 0, r.stderr
    assert "4 utterances" in r.stdout and "1 skipped" in r.stdout
    assert list(read_table(tmp_path / "dump" / "bad_utts")) == ["zz-bad"]
    assert "zz-bad" not in DataDir(tmp_path / "dump").validate().utt_ids
    arr = kaldiio.load_scp(str(tmp_path / "dump" / "feats.scp"))
    assert len(arr) == 4


def test_cmvn_statistics_load_without_torch():
    # The feature dump's driver merges statistics: it must not pay for importing torch.
    r = subprocess.run([sys.executable, "-c", "import sys, mslam.bin.compute_fbank; print('torch' in sys.modules)"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr


def test_audio_at_another_rate_is_named_when_features_are_dumped(tmp_path):
    from mslam.bin.compute_fbank import FEATURE_RATE, resampling_note
    assert FEATURE_RATE == FbankConfig().sample_rate
    import soundfile
    utts = []
    for i, rate in enumerate((8000, 8000, 16000)):
        soundfile.write(tmp_path / f"u{i}.wav", np.zeros(rate // 2, dtype=np.float32), rate)
        utts.append(Utterance(id=f"u{i}", wav=str(tmp_path / f"u{i}.wav"), speaker="s"))
    write_data_dir(tmp_path / "data", utts)
    assert resampling_note(tmp_path / "data") == (
        f"note: {tmp_path / 'data'}: audio at 8000 Hz (2 of the 3 files checked) is resampled to 16000 Hz; "
        "the mel bands above 4000 Hz hold no signal from it")
    write_data_dir(tmp_path / "same", utts[2:])
    assert resampling_note(tmp_path / "same") is None
