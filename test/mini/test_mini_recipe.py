"""egs/mini/run.sh stage 1 (corpus generation) end to end, through bash, as a user runs it; the
few-label sets of stage 2."""
from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from mslam.data.kaldi import DataDir
from mslam.data.mini_corpus import DATA_DIRS, SPLITS

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "egs" / "mini"


def run_recipe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(RECIPE / "run.sh"), *args], capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_run_sh_generates_the_tiny_corpus_once(tmp_path):
    data, exp = tmp_path / "data", tmp_path / "exp"
    opts = ["--stop-stage", "1", "--size", "tiny", "--data", str(data), "--exp", str(exp)]
    r = run_recipe(*opts)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "stage 1: generate the toy corpus" in r.stdout
    for name in DATA_DIRS:
        for split in SPLITS:
            DataDir(data / name / split).validate()
    assert json.loads((data / "summary.json").read_text())["size"] == "tiny"
    assert (exp / ".stages" / "1.done").is_file()
    stamp = (data / "summary.json").stat().st_mtime_ns
    r = run_recipe(*opts)   # finished: skipped
    assert r.returncode == 0, r.stdout + r.stderr
    assert "done earlier" in r.stdout
    assert (data / "summary.json").stat().st_mtime_ns == stamp


def test_run_sh_rejects_unknown_options(tmp_path):
    r = run_recipe("--no-such-option", "1", "--data", str(tmp_path / "d"), "--exp", str(tmp_path / "e"))
    assert r.returncode != 0
    assert not (tmp_path / "d").exists()


def test_corpus_matches_tells_a_corpus_of_another_size_or_seed(tmp_path):
    check = [sys.executable, str(RECIPE / "local" / "corpus_matches.py"), str(tmp_path)]
    assert subprocess.run(check + ["tiny", "0"]).returncode == 1   # nothing there
    (tmp_path / "summary.json").write_text(json.dumps({"size": "tiny", "seed": 0}))
    assert subprocess.run(check + ["tiny", "0"]).returncode == 0
    assert subprocess.run(check + ["small", "0"]).returncode == 1
    assert subprocess.run(check + ["tiny", "1"]).returncode == 1


def test_few_label_sets_are_seeded_draws_over_disjoint_speakers(mini_corpus, tmp_path):
    """Stage 2's few-label sets: the per-language counts asked for, drawn over many voices, with
    train, dev and test speakers disjoint (a "first N" cut held one voice per set)."""
    import shutil
    data = tmp_path / "data"
    shutil.copytree(mini_corpus, data, ignore=shutil.ignore_patterns("audio"))
    r = subprocess.run([sys.executable, str(RECIPE / "local" / "few_label_sets.py"), str(data), "3"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for task in ("asr", "st", "intent", "langid"):
        sets = {split: DataDir(data / task / f"{split}_few").validate() for split in SPLITS}
        speakers = {split: set(d.tables["utt2spk"].values()) for split, d in sets.items()}
        assert not speakers["train"] & speakers["dev"] and not speakers["train"] & speakers["test"]
        assert not speakers["dev"] & speakers["test"]
        full = DataDir(data / task / "train").validate()
        available = Counter(full.tables["utt2lang"].values())
        wanted = {"asr": 3, "st": 1, "intent": 1, "langid": 3}[task]  # 3 labels: intent half, ST 60%
        assert Counter(sets["train"].tables["utt2lang"].values()) == {
            lang: min(wanted, n) for lang, n in available.items()}
        # one speaker per utterance wherever the language has enough speakers
        for lang in available:
            utts = [u for u, v in sets["train"].tables["utt2lang"].items() if v == lang]
            lang_speakers = {full.tables["utt2spk"][u] for u, v in full.tables["utt2lang"].items() if v == lang}
            assert len({sets["train"].tables["utt2spk"][u] for u in utts}) == min(len(utts), len(lang_speakers))


def test_label_gain_table_and_plot_from_known_scores(tmp_path):
    """Means, standard deviations, gains (CER: down is better) and their standard errors of known runs."""
    runs = tmp_path / "label_gain"
    known = {("asr", "scratch", "10"): [30.0, 34.0], ("asr", "w2v-bert", "10"): [20.0, 22.0],
             ("langid", "scratch", "all"): [80.0, 80.0, 83.0], ("langid", "w2v-bert", "all"): [90.0, 91.0, 89.0]}
    for (task, encoder, n), values in known.items():
        for seed, v in enumerate(values):
            out = runs / task / encoder / f"n{n}" / f"seed{seed}" / "decode_test"
            out.mkdir(parents=True)
            scores = {"task": task, "average": {"cer": v, "wer": 0.0}} if task == "asr" else {"task": task, "accuracy": v}
            (out / "scores.json").write_text(json.dumps(scores))
    r = subprocess.run([sys.executable, str(RECIPE / "local" / "plot_label_gain.py"), "--runs", str(runs),
                        "--out", str(tmp_path / "gain")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    table = (tmp_path / "gain.md").read_text()
    # asr: scratch 32 +- 2.8, w2v-bert 21 +- 1.4; gain 11, se sqrt(2/2 + 8/2) = 2.2
    assert "| 10 | 32.0 +- 2.8 (2) | 21.0 +- 1.4 (2) | +11.0 +- 2.2 |" in table, table
    # langid: scratch 81 +- 1.7, w2v-bert 90 +- 1.0; gain 9, se sqrt(1/3 + 3/3) = 1.2
    assert "| all | 81.0 +- 1.7 (3) | 90.0 +- 1.0 (3) | +9.0 +- 1.2 |" in table, table
    assert (tmp_path / "gain.png").read_bytes()[:4] == b"\x89PNG"
