"""mC4 preparation in bounded memory: the duplicates found on disk are exactly the repeats, the
output equals what remembering every sentence wrote, a killed run does not read its finished shards
again, and a small synthetic input (bench/prep_memory.py, whose 2 GB figure is in bench/README.md)
runs with its peak RSS measured in a fresh process."""
from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest

import mslam.data.corpora.mc4 as mc4
from mslam.data.corpora.mc4 import CleaningRules, clean_split, find_duplicates, prepare_language, scan_shard
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


def read_parts(inputs: dict[str, list[Path]], work: Path) -> list[Path]:
    work.mkdir()
    parts = [work / f"part-{i}" for i in range(len(inputs["train"] + inputs["dev"]))]
    for shard, part in zip(inputs["train"] + inputs["dev"], parts):
        scan_shard(shard, CleaningRules(), 20, part)
    return parts


def expected_duplicates(parts: list[Path]) -> list[list[int]]:
    seen, duplicates = set(), []
    for part in parts:
        lines = (part.parent / f"{part.name}.txt").read_text(encoding="utf-8").splitlines()
        duplicates.append([i for i, line in enumerate(lines) if line in seen or seen.add(line)])
    return duplicates


def found_duplicates(parts: list[Path]) -> list[list[int]]:
    return [sorted(np.fromfile(part.parent / f"{part.name}.dups", dtype=np.uint64).tolist()) for part in parts]


@pytest.mark.parametrize("bucket_pairs", [1 << 20, 7])
def test_duplicates_are_exactly_the_repeats_of_earlier_sentences(tmp_path, monkeypatch, bucket_pairs):
    monkeypatch.setattr(mc4, "BUCKET_PAIRS", bucket_pairs)   # 7: many buckets, each sorted in slices
    monkeypatch.setattr(mc4, "MAX_BUCKETS", 3)
    parts = read_parts(corpus(tmp_path), tmp_path / "work")
    find_duplicates(parts, tmp_path / "work")
    assert found_duplicates(parts) == expected_duplicates(parts) and any(found_duplicates(parts))
    assert not list((tmp_path / "work").glob("*.pairs"))


def test_output_equals_remembering_every_sentence(tmp_path):
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
    assert not list((tmp_path / "out").glob(".*tmp")) and not (tmp_path / "out" / mc4.WORK).exists()


def test_a_killed_run_does_not_read_its_finished_shards_again(tmp_path, monkeypatch):
    inputs = corpus(tmp_path)
    rules = CleaningRules()
    expected = prepare_language(tmp_path / "whole", "de", inputs, rules)
    read = []

    def scan_then_die(shard, *args):
        if read:
            raise KeyboardInterrupt   # killed while reading the second shard
        read.append(shard)
        return scan_shard(shard, *args)

    monkeypatch.setattr(mc4, "scan_shard", scan_then_die)
    with pytest.raises(KeyboardInterrupt):
        prepare_language(tmp_path / "out", "de", inputs, rules)
    read.clear()
    monkeypatch.setattr(mc4, "scan_shard", lambda shard, *args: read.append(shard) or scan_shard(shard, *args))
    assert prepare_language(tmp_path / "out", "de", inputs, rules) == expected
    assert read == inputs["train"][1:] + inputs["dev"]
    for split in ("train", "dev"):
        assert (tmp_path / "out" / split / "de.txt").read_bytes() == (tmp_path / "whole" / split / "de.txt").read_bytes()


def test_shards_read_in_parallel_give_the_same_output(tmp_path):
    corpus(tmp_path / "mc4")
    for nj in (1, 2):
        mc4.prepare(tmp_path / "mc4", tmp_path / f"nj{nj}", ["de"], nj=nj)
    for name in ("train/de.txt", "dev/de.txt", "stats.json"):
        assert (tmp_path / "nj2" / name).read_bytes() == (tmp_path / "nj1" / name).read_bytes()
    assert not (tmp_path / "nj2" / mc4.WORK).exists()


def test_peak_rss_of_a_small_synthetic_input(tmp_path):
    spec = importlib.util.spec_from_file_location("prep_memory", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.make_input(tmp_path, gzip_mb=1, shards=2)
    result = bench.measure(tmp_path)
    assert result["sentences"] > 5000 and result["input_gzip_bytes"] > 2 ** 20 * 0.9
    assert result["peak_rss_mb"] < result["interpreter_rss_mb"] + 60   # a bounded pass on top of the imports
