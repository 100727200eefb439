"""Recipe conventions: path.sh finds the toolkit through its symlink, finished stages are skipped on a
rerun, a failed or killed stage is redone, and --stage forces stages from there on."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

RECIPE = r"""#!/usr/bin/env bash
set -euo pipefail
. ./path.sh
stage=1
stop_stage=100
fail_at=0
. "$MAIN_ROOT/tools/parse_options.sh"
. "$MAIN_ROOT/tools/stages.sh"
for n in 1 2 3; do
    if stage_begin $n "step $n"; then
        echo "ran $n" >> ran.txt
        [ "$n" -ne "$fail_at" ] || { echo "stage $n failed" >&2; exit 1; }
        stage_end $n
    fi
done
python -c "import mslam" && echo "venv ok"
stages_summary
"""


@pytest.fixture()
def recipe(tmp_path):
    d = tmp_path / "egs" / "toy" / "asr1"
    d.mkdir(parents=True)
    (d / "path.sh").symlink_to(REPO / "egs" / "TEMPLATE" / "path.sh")
    (d / "run.sh").write_text(RECIPE)
    (d / "run.sh").chmod(0o755)
    return d


def run(recipe, *args):
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    r = subprocess.run(["./run.sh", *args], cwd=recipe, capture_output=True, text=True, env=env)
    ran = (recipe / "ran.txt").read_text().split("\n") if (recipe / "ran.txt").exists() else []
    (recipe / "ran.txt").unlink(missing_ok=True)
    return r, [line for line in ran if line]


def test_stages_skip_resume_and_force(recipe):
    r, ran = run(recipe)
    assert r.returncode == 0, r.stderr
    assert ran == ["ran 1", "ran 2", "ran 3"] and "venv ok" in r.stdout
    assert sorted(p.name for p in (recipe / "exp" / ".stages").iterdir()) == ["1.done", "2.done", "3.done"]
    r, ran = run(recipe)
    assert ran == [] and "stage 2: step 2: done earlier" in r.stdout
    r, ran = run(recipe, "--stage", "2")
    assert ran == ["ran 2", "ran 3"]
    r, ran = run(recipe, "--stage", "1", "--stop-stage", "1")
    assert ran == ["ran 1"]


def test_failed_stage_is_redone_and_nothing_before_it(recipe):
    (recipe / "exp" / ".stages").mkdir(parents=True)
    r, ran = run(recipe, "--fail-at", "2")
    assert r.returncode == 1 and "stage 2 failed" in r.stderr
    assert ran == ["ran 1", "ran 2"]
    assert not (recipe / "exp" / ".stages" / "2.done").exists()
    r, ran = run(recipe)
    assert r.returncode == 0 and ran == ["ran 2", "ran 3"], r.stdout + r.stderr


def test_path_sh_reports_a_missing_venv(tmp_path):
    fake_root = tmp_path / "root"
    (fake_root / "egs" / "TEMPLATE").mkdir(parents=True)
    (fake_root / "egs" / "TEMPLATE" / "path.sh").write_text((REPO / "egs" / "TEMPLATE" / "path.sh").read_text())
    r = subprocess.run(["bash", "-c", ". egs/TEMPLATE/path.sh"], cwd=fake_root, capture_output=True, text=True)
    assert r.returncode == 1 and "tools/venv is missing; run 'make install'" in r.stderr
