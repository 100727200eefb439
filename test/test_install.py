"""`make install` is idempotent: once done, make has nothing left to do (and reruns are instant)."""
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_install_is_up_to_date():
    # make -q exits 0 only when the target is up to date, without running anything
    r = subprocess.run(["make", "-q", "install"], cwd=REPO)
    assert r.returncode == 0, "make install would redo work: the stamp tools/venv/.installed is stale"


def test_ci_script_runs_the_readme_commands():
    ci = (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    assert "make install" in ci and "make test" in ci
    assert "make install" in readme and "make test" in readme and "make demo" in readme
