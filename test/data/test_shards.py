"""Shard sets: written once, read lazily, sampled with per-utterance temperature sampling; bad
shard sets stop with the file, the line and what was expected."""
import json
from collections import Counter

import numpy as np
import pytest

from mslam.bin.make_shards import main as make_shards
from mslam.data.manifest import Record
from mslam.data.shards import ShardError, ShardSampler, ShardSource, write_shards
from mslam.data.tokenizer import temperature_weights


class Budget:
    """The fields ShardSampler reads from a source config."""
    def __init__(self, temperature=3.0, batch_sequences=0, batch_frames=0, max_frames=0, min_frames=0):
        self.temperature, self.batch_sequences, self.batch_frames = temperature, batch_sequences, batch_frames
        self.max_frames, self.min_frames = max_frames, min_frames

    def budget_units(self):
        return self.batch_frames

    def max_units(self):
        return self.max_frames


SIZES = {"aa": 3000, "bb": 900, "cc": 250, "dd": 60}


def synthetic(sizes=SIZES, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for lang, n in sizes.items():
        for i, length in enumerate(rng.integers(50, 500, size=n)):  # the same length distribution everywhere
            out.append(Record(f"{lang}-{i:05d}", lang, int(length), wav=f"audio/{lang}/{i}.flac"))
    rng.shuffle(out)  # languages interleaved, as a data dir sorted by utterance id may have them
    return out


@pytest.fixture(scope="module")
def shard_set(tmp_path_factory):
    d = tmp_path_factory.mktemp("shards") / "speech"
    recs = synthetic()
    write_shards(d, "speech", lambda: recs, shard_size=100, buckets=4)
    return d, recs


def test_every_record_comes_back_and_shards_are_bounded(shard_set):
    d, recs = shard_set
    source = ShardSource([d], "speech")
    assert len(source) == len(recs)
    assert sorted(source, key=lambda r: r.id) == sorted(recs, key=lambda r: r.id)
    assert max(s.count for s in source.shards) <= 100
    index = json.loads((d / "index.json").read_text())
    for lang, n in SIZES.items():
        entry = index["langs"][lang]
        assert entry["utterances"] == n
        assert entry["units"] == sum(r.length for r in recs if r.lang == lang)
        assert len(entry["buckets"]) == min(4, n // 16)


def test_language_shares_over_10000_batches_follow_the_temperature_formula(shard_set):
    d, recs = shard_set
    source = ShardSource([d], "speech")
    sampler = ShardSampler("speech", source, Budget(temperature=3.0, batch_frames=4000), seed=0, min_items=1,
                           source_id=0)
    counts, mixed = Counter(), 0
    for step in range(10000):
        langs = [sampler.language_of(i) for i in sampler.draw(step)]
        counts.update(langs)
        mixed += len(set(langs)) > 1
    total = sum(counts.values())
    units = {lang: sum(r.length for r in recs if r.lang == lang) for lang in SIZES}
    for lang, p in temperature_weights(units, 3.0).items():
        assert abs(counts[lang] / total - p) < 0.01, (lang, counts[lang] / total, p)
    assert mixed > 9000  # languages mix within a batch


def test_a_step_is_a_pure_function_of_seed_and_step_within_budget(shard_set):
    d, _ = shard_set
    make = lambda seed: ShardSampler("speech", ShardSource([d], "speech"), Budget(batch_frames=3000,  # noqa: E731
                                                                                 batch_sequences=16), seed, 2, 0)
    a, b, other = make(1), make(1), make(2)
    assert [a.draw(s) for s in range(30)] == [b.draw(s) for s in range(30)]
    assert a.draw(5) != a.draw(6) and [a.draw(s) for s in range(10)] != [other.draw(s) for s in range(10)]
    for s in range(100):
        idx = a.draw(s)
        assert 2 <= len(idx) <= 16 and len(set(idx)) == len(idx)
        assert len(idx) == 2 or len(idx) * max(a.lengths[i] for i in idx) <= 3000


def test_lengths_outside_the_limits_are_not_drawn(shard_set):
    d, _ = shard_set
    sampler = ShardSampler("speech", ShardSource([d], "speech"), Budget(batch_sequences=8, min_frames=100,
                                                                        max_frames=300), 0, 1, 0)
    assert all(100 <= sampler.lengths[i] <= 300 for s in range(200) for i in sampler.draw(s))


def test_make_shards_converts_text_shards_and_does_not_redo_a_finished_set(tmp_path, capsys):
    (tmp_path / "txt").mkdir()
    (tmp_path / "txt/en.txt").write_text("one two\n\nthree\n", encoding="utf-8")
    (tmp_path / "txt/de.txt").write_text("eins\n", encoding="utf-8")
    args = ["--kind", "text", "--out", str(tmp_path / "set"), str(tmp_path / "txt")]
    assert make_shards(args) == 0 and make_shards(args) == 0
    assert "wrote" in capsys.readouterr().out.splitlines()[0]
    records = sorted(ShardSource([tmp_path / "set"], "text"), key=lambda r: r.id)
    assert [(r.id, r.lang, r.text, r.length) for r in records] == [
        ("de:1", "de", "eins", 4), ("en:1", "en", "one two", 7), ("en:3", "en", "three", 5)]
    with pytest.raises(ShardError, match="kind 'speech'"):
        ShardSource([tmp_path / "set"], "speech")


# ----------------------------------------------------------------------------- bad input
def small_set(tmp_path):
    d = tmp_path / "set"
    write_shards(d, "text", lambda: [Record(f"en:{i}", "en", 3, "abc") for i in range(1, 6)], shard_size=10)
    return d


def first_shard(d):
    return d / json.loads((d / "index.json").read_text())["langs"]["en"]["buckets"][0]["shards"][0]["file"]


def test_a_missing_or_broken_index_names_the_file_and_what_was_expected(tmp_path):
    with pytest.raises(ShardError, match="index.json: not found; .*make_shards"):
        ShardSource([tmp_path], "text")
    d = small_set(tmp_path)
    index = d / "index.json"
    good = json.loads(index.read_text())
    index.write_text("{not json")
    with pytest.raises(ShardError, match=r"index.json: not JSON"):
        ShardSource([d], "text")
    broken = json.loads(json.dumps(good))
    broken["langs"]["en"]["buckets"][0]["shards"][0]["utterances"] = "five"
    index.write_text(json.dumps(broken))
    with pytest.raises(ShardError, match=r"index.json: langs.en.buckets\[0\].shards\[0\]: expected"):
        ShardSource([d], "text")


def test_an_index_shorter_than_promised_or_a_corrupt_record_names_file_and_line(tmp_path):
    d = small_set(tmp_path)
    idx = first_shard(d).with_suffix(".idx")
    idx.write_bytes(idx.read_bytes()[:-16])
    with pytest.raises(ShardError, match=r"en/b0\d-00000.idx: expected 5 rows of 16 bytes .* found 64 bytes"):
        ShardSource([d], "text").record(0)
    d = small_set(tmp_path / "again")
    data = first_shard(d).with_suffix(".jsonl")
    lines = data.read_bytes().splitlines(keepends=True)
    lines[2] = b"X" * (len(lines[2]) - 1) + b"\n"     # same length: the index still points at it
    data.write_bytes(b"".join(lines))
    source = ShardSource([d], "text")
    assert source.record(1).text == "abc"
    with pytest.raises(ShardError, match=r"en/b0\d-00000.jsonl:3: expected a JSON record with id, lang, length"):
        source.record(2)
