"""Preparation in shards and bounded memory (VoxPopuli, CoVoST 2, FLEURS; make_shards on Kaldi dirs): a
killed run redoes only the shards it had not finished and ends with what an uninterrupted run writes,
--nj 2 writes what --nj 1 writes, repeated ids are still named by file and line (also when they meet
only in the on-disk sort), and peak memory does not grow with the rows."""
from __future__ import annotations

import gzip
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from corpora_test_utils import copy_download, fixture_langs
from mslam.bin.make_shards import speech_records
from mslam.data.corpora import common, covost2, fleurs, voxpopuli
from mslam.data.corpora.common import SortedRows, utt_order_key
from mslam.data.kaldi import DataDirError
from mslam.data.manifest import speech_manifest

REPO = Path(__file__).resolve().parents[2]
LANGS = ["de", "fr", "pl"]
YEARS = ["2019", "2020"]


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def vox_root(fixture_tree: Path, tmp_path: Path) -> Path:
    root = tmp_path / "dl"
    if not root.exists():
        shutil.copytree(fixture_tree / "voxpopuli", root)
    return root


def prepare_vox(root: Path, out: Path, what: str, nj: int = 1) -> dict:
    return voxpopuli.prepare(root, out, what, LANGS, YEARS, nj=nj, progress=False)


# ---- the on-disk sort ----------------------------------------------------------------------

def test_sorted_rows_hold_one_run_and_merge_the_runs_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RUNS_PER_MERGE", 4)   # 10 runs: two merged into longer runs on the way
    rows = SortedRows(tmp_path, "t", utt_order_key, rows_in_memory=10)
    ids = [f"u{(i * 37) % 101:03d}" for i in range(101)] + ["u050"]   # one id twice
    for order, utt in enumerate(ids):
        rows.add((utt, str(order)))
        assert len(rows.buffer) < 10
    assert [len(level) for level in rows.levels] == [2, 2]
    merged = [tuple(row) for row in rows]
    assert merged == sorted(((u, str(o)) for o, u in enumerate(ids)), key=utt_order_key)
    rows.remove()
    assert not list(tmp_path.iterdir())


# ---- resume after a kill -------------------------------------------------------------------

KILL_SECOND_SHARD = """
import os, sys
from mslam.data.corpora import voxpopuli
real = voxpopuli.unlabelled_shard
def shard(folder, *args):
    folder.joinpath("half-written.run0").write_text("x")   # what a killed job leaves
    if args[3] == "fr":
        os.kill(os.getpid(), 9)
    return real(folder, *args)
voxpopuli.unlabelled_shard = shard
voxpopuli.prepare(sys.argv[1], sys.argv[2], "unlabelled", ["de", "fr", "pl"], ["2019", "2020"], progress=False)
"""


def test_a_killed_run_redoes_only_the_unfinished_shards(fixture_tree, tmp_path, monkeypatch):
    root = vox_root(fixture_tree, tmp_path)
    prepare_vox(root, tmp_path / "whole", "unlabelled")

    out = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", KILL_SECOND_SHARD, str(root), str(out)], cwd=REPO)
    assert proc.returncode == -9
    parts = common.parts_folder(out)
    assert (parts / "de.done").is_file() and not (parts / "fr.done").exists() and not out.exists()

    done = []
    real = voxpopuli.unlabelled_shard
    monkeypatch.setattr(voxpopuli, "unlabelled_shard", lambda folder, *args: done.append(args[3]) or
                        real(folder, *args))
    assert prepare_vox(root, out, "unlabelled") == prepare_vox(root, tmp_path / "again", "unlabelled")
    assert done == ["fr", "pl", "de", "fr", "pl"]   # the rerun: fr and pl; then a fresh run: all three
    assert files(out) == files(tmp_path / "whole")
    assert not parts.exists()   # the shards are removed once the data dirs are written


def test_a_failed_shard_keeps_the_finished_ones_for_the_rerun(fixture_tree, tmp_path, monkeypatch):
    cv, cov = tmp_path / "cv", tmp_path / "covost"
    shutil.copytree(fixture_tree / "commonvoice", cv)
    shutil.copytree(fixture_tree / "covost2", cov)
    langs = ["de", "fr", "es"]
    covost2.prepare(cv, cov, tmp_path / "whole", langs, progress=False)

    real, done = covost2.covost_shard, []

    def shard(folder, cv_dir, tsv, lang, progress):
        if lang == "es" and "failed" not in done:
            done.append("failed")
            raise KeyboardInterrupt   # a stop from outside, after fr is stamped
        done.append(lang)
        return real(folder, cv_dir, tsv, lang, progress)
    monkeypatch.setattr(covost2, "covost_shard", shard)
    with pytest.raises(KeyboardInterrupt):
        covost2.prepare(cv, cov, tmp_path / "out", langs, progress=False)
    assert done == ["de", "fr", "failed"]
    covost2.prepare(cv, cov, tmp_path / "out", langs, progress=False)
    assert done == ["de", "fr", "failed", "es"]
    assert files(tmp_path / "out") == files(tmp_path / "whole")


# ---- processes ---------------------------------------------------------------------------

@pytest.mark.parametrize("what", ["unlabelled", "asr"])
def test_voxpopuli_nj_2_writes_what_nj_1_writes(fixture_tree, tmp_path, what):
    root = vox_root(fixture_tree, tmp_path)
    assert prepare_vox(root, tmp_path / "one", what, nj=1) == prepare_vox(root, tmp_path / "two", what, nj=2)
    assert files(tmp_path / "one") == files(tmp_path / "two")


def test_covost_and_fleurs_nj_2_write_what_nj_1_writes(fixture_tree, tmp_path):
    cv, cov = tmp_path / "cv", tmp_path / "covost"
    shutil.copytree(fixture_tree / "commonvoice", cv)
    shutil.copytree(fixture_tree / "covost2", cov)
    one = covost2.prepare(cv, cov, tmp_path / "c1", ["de", "fr", "es"], nj=1, progress=False)
    two = covost2.prepare(cv, cov, tmp_path / "c2", ["de", "fr", "es"], nj=2, progress=False)
    assert one == two and files(tmp_path / "c1") == files(tmp_path / "c2")

    root, langs = copy_download(fixture_tree, "fleurs", tmp_path), fixture_langs(fixture_tree, "fleurs")
    assert fleurs.prepare(root, tmp_path / "f1", langs, nj=1, progress=False) == \
        fleurs.prepare(root, tmp_path / "f2", langs, nj=2, progress=False)
    assert files(tmp_path / "f1") == files(tmp_path / "f2")


def test_an_error_in_a_worker_process_is_the_same_clear_error(fixture_tree, tmp_path):
    root = vox_root(fixture_tree, tmp_path)
    table = root / "annotations/asr/asr_fr.tsv.gz"
    lines = gzip.open(table, "rt").read().splitlines()
    lines[2] += "|"   # a field too many
    table.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    with pytest.raises(DataDirError, match=rf"{table}:3: 15 field\(s\), expected 14"):
        prepare_vox(root, tmp_path / "out", "asr", nj=2)


# ---- repeated ids ----------------------------------------------------------------------------

def repeat_row(table: Path, delimiter: str, row: int, at_end: bool = True) -> int:
    """Append (or insert after it) a copy of data row `row`; returns the copy's line number."""
    lines = gzip.open(table, "rt", encoding="utf-8").read().splitlines()
    copy = lines[row + 1]
    lines = lines + [copy] if at_end else lines[:row + 2] + [copy] + lines[row + 2:]
    table.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return len(lines) if at_end else row + 3


def test_a_repeated_segment_is_named_by_both_lines_across_sorted_runs(fixture_tree, tmp_path, monkeypatch):
    monkeypatch.setattr(common, "ROWS_IN_MEMORY", 2)   # the copies meet only in the merge of runs
    root = vox_root(fixture_tree, tmp_path)
    table = root / "annotations/unlabelled_v2.tsv.gz"
    line = repeat_row(table, "\t", 0)
    event, segment = gzip.open(table, "rt").read().splitlines()[1].split("\t")[:2]
    with pytest.raises(DataDirError, match=rf"{table}:{line}: segment {segment} of event '{event}' is also on line 2$"):
        prepare_vox(root, tmp_path / "out", "unlabelled")


def test_a_repeated_asr_utterance_and_covost_clip_are_named_by_file_and_line(fixture_tree, tmp_path):
    root = vox_root(fixture_tree, tmp_path)
    table = root / "annotations/asr/asr_pl.tsv.gz"
    line = repeat_row(table, "|", 0)
    with pytest.raises(DataDirError, match=rf"{table}:{line}: utterance '.*' is also on line 2$"):
        prepare_vox(root, tmp_path / "out", "asr", nj=2)

    cv, cov = tmp_path / "cv", tmp_path / "covost"
    shutil.copytree(fixture_tree / "commonvoice", cv)
    covost2.extract_covost_tsv(shutil.copytree(fixture_tree / "covost2", cov), "de")
    tsv = cov / "covost_v2.de_en.tsv"
    lines = tsv.read_text(encoding="utf-8").splitlines(keepends=True)
    tsv.write_text("".join(lines + [lines[1]]), encoding="utf-8")
    clip = lines[1].split("\t")[0]
    with pytest.raises(DataDirError, match=rf"{tsv}:{len(lines) + 1}: clip '{clip}' is listed again \(first on "
                                           rf"line 2\)"):
        covost2.prepare(cv, cov, tmp_path / "c", ["de"], progress=False)


# ---- make_shards reads data dirs as streams ------------------------------------------------

def test_streamed_records_equal_the_manifest_of_the_whole_dir(fixture_tree, tmp_path):
    root = vox_root(fixture_tree, tmp_path)
    prepare_vox(root, tmp_path / "asr", "asr")     # segments, wav.scp per session, text
    fl = copy_download(fixture_tree, "fleurs", tmp_path)
    fleurs.prepare(fl, tmp_path / "fl", fixture_langs(fixture_tree, "fleurs"), progress=False)  # utt2num_samples
    for d in (tmp_path / "asr" / "train", tmp_path / "fl" / "dev"):
        for with_text in (False, True):
            assert list(speech_records(d, with_text)) == speech_manifest(d, with_text=with_text)


def test_a_malformed_table_in_a_streamed_dir_is_named(fixture_tree, tmp_path):
    root = vox_root(fixture_tree, tmp_path)
    prepare_vox(root, tmp_path / "asr", "asr")
    d = tmp_path / "asr" / "train"
    text = (d / "text").read_text(encoding="utf-8").splitlines(keepends=True)
    (d / "text").write_text("".join([text[1], text[0], *text[2:]]), encoding="utf-8")
    with pytest.raises(DataDirError, match=r"text:2: id '.*' is out of order after"):
        list(speech_records(d, False))
    (d / "text").write_text("".join(text[1:]), encoding="utf-8")
    with pytest.raises(DataDirError, match=rf"invalid data dir {d}:\n  {d / 'text'}: utterance '.*' that other "
                                           r"tables have is missing .*data_dir fix"):
        list(speech_records(d, False))
    (d / "text").write_text("".join(text), encoding="utf-8")
    spk2utt = (d / "spk2utt").read_text(encoding="utf-8").splitlines(keepends=True)
    (d / "spk2utt").write_text("".join(spk2utt[1:]), encoding="utf-8")
    with pytest.raises(DataDirError, match=r"spk2utt: does not match utt2spk"):
        list(speech_records(d, False))


# ---- memory --------------------------------------------------------------------------------

def bench():
    spec = importlib.util.spec_from_file_location("prep_memory_speech", REPO / "bench" / "prep_memory_speech.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_preparation_peak_memory_does_not_grow_with_the_rows(tmp_path):
    """A shard sorting 1000 rows in memory: 5k and 30k rows of the unlabelled table peak alike
    (bench/prep_memory_speech.py measures 200k and 2M rows)."""
    small, large = (bench().measure_voxpopuli(tmp_path, n, 1000) for n in (5000, 30000))
    assert large["peak_rss_mb"] < 1.1 * small["peak_rss_mb"], (small, large)


@pytest.mark.slow
def test_make_shards_peak_memory_does_not_grow_with_the_utterances(tmp_path):
    """2k and 12k utterances peak alike (the bench: 100k and 1M). Slow: each run imports torch."""
    small, large = (bench().measure_make_shards(tmp_path, n, 1000) for n in (2000, 12000))
    assert large["peak_rss_mb"] < 1.1 * small["peak_rss_mb"], (small, large)
