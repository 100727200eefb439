"""`make demo` in miniature: egs/mini/run.sh --size tiny runs every stage (corpus, vocabulary,
pre-training, fine-tuning on five tasks, decoding, scoring) for a pre-trained and a from-scratch
encoder, and writes RESULTS.md with every table and the plots; a second run does no work."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "egs" / "mini"
MODELS = ("no pre-training", "mSLAM-CTC")  # two of the four encoders: the same code paths, half the time


@pytest.mark.slow
def test_the_whole_demo_runs_on_the_tiny_corpus(tmp_path):
    opts = ["--size", "tiny", "--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp"),
            "--results", str(tmp_path / "results"), "--models", "none mslam-ctc"]
    r = subprocess.run(["bash", str(RECIPE / "run.sh"), *opts], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for n in range(1, 7):
        assert f"stage {n}: finished" in r.stdout
    results = (tmp_path / "results" / "RESULTS.md").read_text()
    for heading in ("Speech-only fine-tuning", "Joint ST + MT fine-tuning", "ASR", "Intent and LangID",
                    "Zero-shot text translation", "Pre-training", "Linear probes"):
        assert heading in results
    probes = json.loads((tmp_path / "exp" / "probe.json").read_text())
    for task in ("langid", "intent"):  # front end + 1 speech + 1 shared layer (conf tiny), percentages
        assert {m: len(a) for m, a in probes[task].items()} == {"none": 3, "mslam-ctc": 3}
        assert all(0 <= a <= 100 for accs in probes[task].values() for a in accs)
    # every model has a row with numbers in the ST, ASR and classification tables
    for model in MODELS:
        rows = [line for line in results.splitlines() if line.startswith(f"| {model} |")]
        assert len(rows) >= 5, (model, rows)
        assert all(re.search(r"\| \d+\.\d \|", row) for row in rows), rows
    for png in ("pretrain_loss.png", "tables.png"):
        assert (tmp_path / "results" / "results" / png).read_bytes()[:4] == b"\x89PNG"
    for model in ("none", "mslam-ctc"):
        assert (tmp_path / "exp" / "finetune" / model / "intent" / "decode_test" / "confusion.png").is_file()

    again = subprocess.run(["bash", str(RECIPE / "run.sh"), *opts], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("done earlier") == 6
