"""Preparation in shards and bounded memory (VoxPopuli, CoVoST 2, FLEURS; make_shards on Kaldi dirs): a
killed run redoes only the shards it had not finished and ends with what an uninterrupted run writes,
--nj 2 writes what --nj 1 writes, repeated ids are still named by file and line (also when they meet
only in the on-disk sort), and peak memory does not grow with the rows."""
from __future__ import annotations

import gzip
import importlib
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
    with pytest.raises(DataDirError, match=rf"invalid data dir {d}:\n  {d / 'text'}: 1 utterance\(s\) that other "
                                           rf"tables have are missing, e.g. '{text[0].split()[0]}' .*data_dir fix"):
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


# ---- a job array: --part J/N, then the merge ---------------------------------------------------

def no_shard_is_redone(monkeypatch):
    def redone(job, folder):
        raise AssertionError(f"shard {job.name} was run again")
    monkeypatch.setattr(common, "run_shard", redone)


def prepare_in_parts(prepare, count: int, monkeypatch) -> tuple[object, list[common.PartDone]]:
    """`prepare(part=...)` for each part in turn, then the merge (which must redo no shard)."""
    done = [prepare(part=common.Part(j, count)) for j in range(1, count + 1)]
    with monkeypatch.context() as m:
        no_shard_is_redone(m)
        return prepare(part=None), done


@pytest.mark.parametrize("what", ["unlabelled", "asr"])
def test_voxpopuli_parts_then_the_merge_write_what_one_call_writes(fixture_tree, tmp_path, monkeypatch, what):
    root, out = vox_root(fixture_tree, tmp_path), tmp_path / "parts"
    # The shared work (unlabelled: the table split by language; asr: the session archives) comes first.
    with pytest.raises(DataDirError, match=rf"--part 1/2: .* not (split by language|extracted) yet; .*: run python "
                                           rf"-m mslam.bin.prepare_voxpopuli prepare .*--what {what} .*--shared-only$"):
        voxpopuli.prepare(root, out, what, LANGS, YEARS, progress=False, part=common.Part(1, 2))
    assert "now run as a job array" in voxpopuli.prepare_shared(root, out, what, LANGS, YEARS, progress=False)
    merged, done = prepare_in_parts(lambda part: voxpopuli.prepare(root, out, what, LANGS, YEARS, progress=False,
                                                                   part=part), 2, monkeypatch)
    assert [d.shards for d in done] == [["de", "pl"], ["fr"]]   # every other language, in their order
    assert merged == prepare_vox(root, tmp_path / "whole", what) and files(out) == files(tmp_path / "whole")
    assert not common.parts_folder(out).exists()
    again = voxpopuli.prepare(root, out, what, LANGS, YEARS, progress=False, part=common.Part(2, 2))
    assert again.up_to_date and "nothing to do" in again.line()


def test_covost_and_fleurs_parts_then_the_merge_write_what_one_call_writes(fixture_tree, tmp_path, monkeypatch):
    cv, cov = tmp_path / "cv", tmp_path / "covost"
    shutil.copytree(fixture_tree / "commonvoice", cv)
    shutil.copytree(fixture_tree / "covost2", cov)
    langs = ["de", "fr", "es"]
    merged, done = prepare_in_parts(lambda part: covost2.prepare(cv, cov, tmp_path / "c", langs, progress=False,
                                                                 part=part), 2, monkeypatch)
    assert [d.shards for d in done] == [["de", "es"], ["fr"]]
    whole = covost2.prepare(cv, cov, tmp_path / "c1", langs, progress=False)
    assert merged["utterances"] == whole["utterances"] and files(tmp_path / "c") == files(tmp_path / "c1")

    root, langs = copy_download(fixture_tree, "fleurs", tmp_path), fixture_langs(fixture_tree, "fleurs")
    merged, done = prepare_in_parts(lambda part: fleurs.prepare(root, tmp_path / "f", langs, progress=False,
                                                                part=part), 4, monkeypatch)
    assert [d.shards for d in done] == [[lang] for lang in langs] + [[]] * (4 - len(langs))
    assert "none (more parts than languages)" in done[-1].line()
    assert merged == fleurs.prepare(root, tmp_path / "f1", langs, progress=False)
    assert files(tmp_path / "f") == files(tmp_path / "f1")


def test_parts_started_together_as_processes_then_the_merge(fixture_tree, tmp_path):
    """The recipe's order: --shared-only, a job array of --part JOB/2 (here two processes at once), the merge."""
    root = vox_root(fixture_tree, tmp_path)
    prepare_vox(root, tmp_path / "whole", "unlabelled")
    out = tmp_path / "out"
    prep = [sys.executable, "-m", "mslam.bin.prepare_voxpopuli", "prepare", "--what", "unlabelled", "--root",
            str(root), "--out", str(out), "--langs", ",".join(LANGS), "--years", ",".join(YEARS), "--no-progress"]
    subprocess.run([*prep, "--shared-only"], cwd=REPO, check=True, capture_output=True)
    jobs = [subprocess.Popen([*prep, "--part", f"{j}/2"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for j in (1, 2)]
    outputs = [job.communicate() for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0], outputs
    assert "part 1/2: shard(s) de pl stamped in" in outputs[0][0] and "shard(s) fr stamped" in outputs[1][0]
    stamps = {p.name: p.stat().st_mtime_ns for p in common.parts_folder(out).glob("*.done")}
    assert set(stamps) == {"rows.done", "de.done", "fr.done", "pl.done"} and not out.exists()
    merge = subprocess.run(prep, cwd=REPO, capture_output=True, text=True)
    assert merge.returncode == 0, merge.stderr
    assert "voxpopuli unlabelled: 3 shard(s) done earlier, 0 to run" in merge.stderr
    assert files(out) == files(tmp_path / "whole")


@pytest.mark.parametrize("spec", ["3/2", "0/2", "garbage", "1/0", "1/"])
@pytest.mark.parametrize("prog", ["prepare_voxpopuli", "prepare_covost2", "prepare_fleurs"])
def test_a_bad_part_is_refused_saying_what_is_expected(tmp_path, capsys, prog, spec):
    main = importlib.import_module(f"mslam.bin.{prog}").main
    with pytest.raises(SystemExit) as exit_:
        main(["prepare", "--root", str(tmp_path), "--out", str(tmp_path / "out"), "--part", spec,
              *(["--what", "asr"] if prog == "prepare_voxpopuli" else [])])
    assert exit_.value.code == 2
    assert f"--part {spec!r}: expected J/N, the job's number J and the number of jobs N with 1 <= J <= N" in \
        capsys.readouterr().err


def test_shared_only_and_part_together_are_refused(tmp_path, capsys):
    from mslam.bin.prepare_voxpopuli import main
    with pytest.raises(SystemExit) as exit_:
        main(["prepare", "--root", str(tmp_path), "--out", str(tmp_path / "out"), "--what", "asr", "--part", "1/2",
              "--shared-only"])
    assert exit_.value.code == 2 and "give one or the other" in capsys.readouterr().err
