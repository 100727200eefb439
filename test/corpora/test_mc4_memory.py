"""mC4 preparation in bounded memory: the first pass finds exactly the sentences that occur more than
once, the cleaning pass that remembers only those writes what remembering every sentence wrote, and
a small synthetic input (bench/prep_memory.py, whose 2 GB figure is in bench/README.md) runs with
its peak RSS measured in a fresh process."""
from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np

from mslam.data.corpora.mc4 import (CleaningRules, RepeatedHashes, _sentence_hash, clean_split, find_repeats,
                                    prepare_language)
from test_mc4 import doc, write_shard

BENCH = Path(__file__).resolve().parents[2] / "bench" / "prep_memory.py"
SENTENCES = [f"Satz Nummer {i} ist lang genug für den Filter." for i in range(40)]


def corpus(root: Path) -> dict[str, list[Path]]:
    """Train repeats sentences within and across shards; dev repeats train and itself."""
    docs = [" ".join(SENTENCES[i % 25] for i in range(k, k + 5)) for k in range(0, 60, 3)]
    train = [write_shard(root / f"c4-de.tfrecord-0000{i}-of-00002.json.gz", [doc(d) for d in docs[i::2]])
             for i in range(2)]
    dev = [write_shard(root / "c4-de-validation.tfrecord-00000-of-00001.json.gz",
                       [doc(SENTENCES[3] + " " + SENTENCES[30]), doc(SENTENCES[30] + " " + SENTENCES[31])])]
    return {"train": train, "dev": dev}


def test_first_pass_finds_exactly_the_repeated_sentences(tmp_path):
    inputs = corpus(tmp_path)
    repeats = find_repeats(inputs["train"] + inputs["dev"], CleaningRules(), 20, tmp_path / "h.tmp")
    assert not (tmp_path / "h.tmp").exists()
    expected = {_sentence_hash(s) for s in SENTENCES[:25] + [SENTENCES[30]]}   # each of these occurs twice or more
    assert set(repeats.tolist()) == expected and list(repeats) == sorted(repeats)


def test_remembering_only_repeats_writes_what_remembering_all_wrote(tmp_path):
    inputs = corpus(tmp_path)
    rules = CleaningRules()
    seen, expected = set(), {}
    for split in ("train", "dev"):
        buf = io.StringIO()
        expected[split] = (clean_split(inputs[split], buf, rules, seen), buf.getvalue())
    stats = prepare_language(tmp_path / "out", "de", inputs, rules)
    for split in ("train", "dev"):
        text = (tmp_path / "out" / split / "de.txt").read_text(encoding="utf-8")
        assert text == expected[split][1]
        assert {k: v for k, v in stats[split].items() if k != "bytes"} == expected[split][0]
    assert not list((tmp_path / "out").glob(".*tmp"))


def test_repeated_hashes_acts_as_a_set_of_the_repeats():
    seen = RepeatedHashes(np.array([3, 7, 2 ** 64 - 1], dtype=np.uint64))
    assert 7 not in seen and 5 not in seen
    seen.add(7), seen.add(5), seen.add(2 ** 64 - 1)
    assert 7 in seen and 2 ** 64 - 1 in seen and 5 not in seen and 3 not in seen


def test_peak_rss_of_a_small_synthetic_input(tmp_path):
    spec = importlib.util.spec_from_file_location("prep_memory", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.make_input(tmp_path, gzip_mb=1, shards=2)
    result = bench.measure(tmp_path)
    assert result["sentences"] > 5000 and result["input_gzip_bytes"] > 2 ** 20 * 0.9
    assert result["peak_rss_mb"] < result["interpreter_rss_mb"] + 60   # a bounded pass on top of the imports
