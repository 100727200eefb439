"""The step sampler: a pure function of (seed, source, step), temperature-sampled languages,
budgets respected, and the global batch dealt into disjoint micro-batches."""
from collections import Counter

import numpy as np
import pytest

from mslam.data.manifest import Record
from mslam.data.pretrain_data import (DataConfig, PretrainBatches, SourceSampler, SpeechSourceConfig,
                                      TextSourceConfig)
from mslam.data.tokenizer import CharTokenizer, temperature_weights


def records(sizes: dict[str, int], length=lambda i: 50 + i % 200):
    return [Record(f"{lang}-{i}", lang, length(i)) for lang, n in sizes.items() for i in range(n)]


SIZES = {"big": 800, "mid": 150, "small": 50}


def test_the_same_step_gives_the_same_batch_and_other_steps_differ():
    cfg = SpeechSourceConfig(dirs=["x"], batch_frames=2000)
    a = SourceSampler("speech", records(SIZES), cfg, seed=3, min_items=1)
    b = SourceSampler("speech", records(SIZES), cfg, seed=3, min_items=1)
    assert [a.draw(s) for s in range(50)] == [b.draw(s) for s in range(50)]
    assert a.draw(7) != a.draw(8)
    other_seed = SourceSampler("speech", records(SIZES), cfg, seed=4, min_items=1)
    assert [a.draw(s) for s in range(20)] != [other_seed.draw(s) for s in range(20)]


@pytest.mark.parametrize("temperature", [1.0, 3.0, 100.0])
def test_languages_are_drawn_with_temperature_probabilities(temperature):
    recs = records(SIZES, length=lambda i: 100)  # equal lengths: data size = utterance count
    sampler = SourceSampler("text", recs, TextSourceConfig(dirs=["x"], batch_sequences=1, temperature=temperature),
                            seed=0, min_items=1)
    steps = 6000
    counts = Counter(recs[sampler.draw(s)[0]].lang for s in range(steps))
    expected = temperature_weights(SIZES, temperature)
    for lang, p in expected.items():
        assert counts[lang] / steps == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / steps))
    if temperature == 100.0:
        assert max(expected.values()) - min(expected.values()) < 0.05  # close to uniform


def test_budgets_hold_and_one_language_and_bucket_per_step():
    recs = records(SIZES)
    lengths = {r.id: r.length for r in recs}
    cfg = SpeechSourceConfig(dirs=["x"], batch_frames=3000, batch_sequences=24, buckets=5)
    sampler = SourceSampler("speech", recs, cfg, seed=1, min_items=2)
    for step in range(200):
        chosen = [recs[i] for i in sampler.draw(step)]
        assert 2 <= len(chosen) <= 24
        assert len(set(chosen[0].lang for _ in chosen)) == 1 and {r.lang for r in chosen} == {chosen[0].lang}
        assert len(chosen) == 2 or len(chosen) * max(lengths[r.id] for r in chosen) <= 3000
        assert len({r.id for r in chosen}) == len(chosen)  # no repeats while the bucket has enough


def test_a_small_bucket_still_fills_every_micro_batch():
    recs = records({"xx": 3})
    sampler = SourceSampler("speech", recs, SpeechSourceConfig(dirs=["x"], batch_sequences=1), seed=0, min_items=8)
    assert len(sampler.draw(0)) == 8


def test_processes_take_disjoint_slices_of_the_same_global_batch(tiny_corpus):
    tok = CharTokenizer.load(tiny_corpus / "chars.txt")
    cfg = DataConfig(root=str(tiny_corpus), speech=SpeechSourceConfig(dirs=["speech/train"], batch_sequences=8),
                     text=TextSourceConfig(dirs=["text_shards/train"], batch_chars=600),
                     paired=SpeechSourceConfig(dirs=["asr/train"], batch_frames=4000))
    single = PretrainBatches(cfg, tok, seed=0, world_size=1, grad_accum=4)
    ranks = [PretrainBatches(cfg, tok, seed=0, rank=r, world_size=2, grad_accum=2) for r in range(2)]
    for step in (1, 2, 50):
        plan = single.plan(step)
        assert plan == ranks[0].plan(step) == ranks[1].plan(step)
        for name, micro in plan.items():
            flat = [i for m in micro for i in m]
            assert all(micro)
            lang = single.records[name][flat[0]].lang
            if sum(r.lang == lang for r in single.records[name]) >= 4:  # else it must repeat some
                assert len(flat) == len(set(flat))
        b0, b1 = ranks[0][step], ranks[1][step]
        assert b0.micro_ids == [0, 2] and b1.micro_ids == [1, 3]
        ids0 = {u for ids in b0.utt_ids for u in ids}
        ids1 = {u for ids in b1.utt_ids for u in ids}
        assert not ids0 & ids1
        batch = b0.micro_batches[0]
        assert batch.speech.feats.shape[-1] == 80 and batch.speech.feats.shape[1] == batch.speech.feat_lens.max()
        assert batch.text.tokens.shape[1] == batch.text.token_lens.max()
        assert batch.paired.tokens.shape[0] == batch.paired.feats.shape[0]


def test_long_utterances_are_dropped_with_a_warning_and_text_is_cut(tiny_corpus, caplog):
    tok = CharTokenizer.load(tiny_corpus / "chars.txt")
    cfg = DataConfig(root=str(tiny_corpus), speech=SpeechSourceConfig(dirs=["speech/train"], batch_sequences=2,
                                                                       max_frames=300),
                     text=TextSourceConfig(dirs=["text_shards/train"], batch_sequences=4, max_chars=10))
    data = PretrainBatches(cfg, tok, seed=0)
    assert "data.speech: dropped" in caplog.text
    assert max(r.length for r in data.records["speech"]) <= 300
    assert int(data[1].micro_batches[0].text.token_lens.max()) <= 10
