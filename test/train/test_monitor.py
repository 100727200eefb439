"""The collapse monitor: eval-mode spreads on a fixed held-out batch against their initial values."""
from __future__ import annotations

import logging

import pytest
import torch

from mslam.tasks.pretrain import build_pretrain_model
from mslam.train.monitor import CollapseMonitor, MonitorConfig, held_out_batch
from mslam.train.progress import read_json_log
from train_test_utils import pretrain_command, run_pretrain


def test_held_out_batch_is_fixed_and_spread_over_languages(tiny_corpus):
    cfg = MonitorConfig(utterances=6)
    a, b = held_out_batch(tiny_corpus / "speech/dev", cfg, None), held_out_batch(tiny_corpus / "speech/dev", cfg, None)
    assert torch.equal(a.feats, b.feats) and a.feats.shape[0] == 6
    langs = {line.split()[1] for line in (tiny_corpus / "speech/dev/utt2lang").read_text().splitlines()}
    assert len(langs) >= 6  # so six utterances are six languages: the draw takes them in turn


def test_held_out_batch_from_a_shard_set_reads_only_what_it_draws(tiny_corpus, tmp_path, monkeypatch):
    from mslam.bin.make_shards import main as make_shards
    from mslam.data.shards import ShardSource
    make_shards(["--kind", "speech", "--out", str(tmp_path / "set"), str(tiny_corpus / "speech/dev")])
    reads = []
    record = ShardSource.record
    monkeypatch.setattr(ShardSource, "record", lambda self, i: (reads.append(i), record(self, i))[1])
    cfg = MonitorConfig(utterances=6)
    a, b = held_out_batch(tmp_path / "set", cfg, None), held_out_batch(tmp_path / "set", cfg, None)
    assert torch.equal(a.feats, b.feats) and a.feats.shape[0] == 6
    langs = {line.split()[1] for line in (tiny_corpus / "speech/dev/utt2lang").read_text().splitlines()}
    assert len(reads) <= 2 * len(langs) * cfg.utterances   # at most `utterances` per language, per call


def test_a_collapsed_encoder_is_reported(tiny_config, caplog):
    cfg = tiny_config()
    torch.manual_seed(0)
    model = build_pretrain_model(cfg)
    part = held_out_batch(cfg.data.path("speech/dev"), MonitorConfig(utterances=8), None)
    monitor = CollapseMonitor(MonitorConfig(collapse_fraction=0.2), part)
    first, warnings = monitor.record(model, 0)
    assert not warnings and not first["collapsed"] and first["utterance_spread_ratio"] == 1.0
    assert 0.02 < first["utterance_spread"] < first["frame_spread"]
    with torch.no_grad():  # the top layer now outputs its bias whatever the input
        norm = model.encoder.shared_layers.layers[-1].norm_out
        norm.weight.zero_()
        norm.bias.normal_()
    record, warnings = monitor.record(model, 10)
    assert record["collapsed"] and record["utterance_spread_ratio"] < 0.01
    assert any("utterance spread" in w for w in warnings) and any("frame spread" in w for w in warnings)
    assert model.training  # the monitor's eval mode does not leak


@pytest.mark.slow
def test_pretraining_writes_the_monitor_record_every_interval(tiny_corpus, tmp_path):
    run_pretrain(pretrain_command(tiny_corpus, tmp_path, **{
        "trainer.max_steps": 6, "trainer.save_every": 6, "monitor.every": 3, "monitor.data": "speech/dev"}))
    records = read_json_log(tmp_path / "dev.jsonl")
    assert [r["step"] for r in records] == [3, 6]
    assert {"frame_spread_ratio", "utterance_spread_ratio", "w2v_mlm_acc", "w2v_mlm_majority_acc",
            "target_perplexity", "collapsed"} <= set(records[0])
