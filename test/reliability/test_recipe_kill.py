"""A recipe SIGKILLed inside a stage: rerunning run.sh redoes only the unfinished stage (tools/stages.sh),
with a throwaway three-stage recipe (egs/mini/run.sh is too heavy to kill and rerun here)."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Stage N appends "start N" and, when it finishes, "done N" to log.txt. With --block-at N, stage N
# waits (for the test to kill the whole recipe) after writing a partial output file.
RECIPE = r"""#!/usr/bin/env bash
set -euo pipefail
. ./path.sh
stage=1
stop_stage=100
block_at=0
. "$MAIN_ROOT/tools/parse_options.sh"
. "$MAIN_ROOT/tools/stages.sh"
for n in 1 2 3; do
    if stage_begin $n "step $n"; then
        echo "start $n" >> log.txt
        echo "partial" > out.$n
        if [ "$n" -eq "$block_at" ]; then
            echo "blocked $n" >> log.txt
            while true; do sleep 0.05; done
        fi
        echo "complete" > out.$n
        echo "done $n" >> log.txt
        stage_end $n
    fi
done
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


def env():
    return {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}


def log_lines(recipe: Path) -> list[str]:
    path = recipe / "log.txt"
    lines = path.read_text().splitlines() if path.exists() else []
    path.unlink(missing_ok=True)
    return lines


@pytest.mark.parametrize("killed_stage", [1, 2, 3])
def test_a_recipe_killed_inside_a_stage_redoes_only_that_stage(recipe, killed_stage):
    proc = subprocess.Popen(["./run.sh", "--block-at", str(killed_stage)], cwd=recipe, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 30
    while f"blocked {killed_stage}" not in ((recipe / "log.txt").read_text() if (recipe / "log.txt").exists() else ""):
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "the recipe never reached the stage to kill"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # bash and its children, mid-stage
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    before = [f"start {n}" for n in range(1, killed_stage)]
    assert [x for x in log_lines(recipe) if x.startswith("start")] == before + [f"start {killed_stage}"]
    stages = recipe / "exp" / ".stages"
    done = sorted(p.name for p in stages.iterdir()) if stages.exists() else []
    assert done == [f"{n}.done" for n in range(1, killed_stage)]
    assert (recipe / f"out.{killed_stage}").read_text() == "partial\n"

    r = subprocess.run(["./run.sh"], cwd=recipe, env=env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    ran = [x for x in log_lines(recipe) if x.startswith("start")]
    assert ran == [f"start {n}" for n in range(killed_stage, 4)], r.stdout
    for n in range(1, killed_stage):
        assert f"stage {n}: step {n}: done earlier" in r.stdout
    assert all((recipe / f"out.{n}").read_text() == "complete\n" for n in (1, 2, 3))
    assert sorted(p.name for p in stages.iterdir()) == ["1.done", "2.done", "3.done"]
