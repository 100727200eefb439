"""tools/slurm.pl: the Slurm job launcher, run against a stand-in sbatch."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[2] / "tools"
SLURM_PL = str(TOOLS / "slurm.pl")

# Emulates `sbatch --parsable --wait [--array=A-B[%K]] ... script`: records its
# arguments, prints a job id, runs the script once per array task with the Slurm
# variables set, and (as --wait does) exits non-zero if a task failed.
FAKE_SBATCH = """\
#!/usr/bin/env bash
printf '%s\\n' "$@" > "$(dirname "$0")/sbatch.args"
array=""; script=""
for a in "$@"; do
  case "$a" in --array=*) array=${a#--array=} ;; esac
  script=$a
done
echo 4242
rc=0
if [ -n "$array" ]; then
  array=${array%%%*}
  for ((i = ${array%-*}; i <= ${array#*-}; i++)); do
    SLURM_JOB_ID=4242 SLURM_ARRAY_TASK_ID=$i bash "$script" > /dev/null 2>&1 || rc=1
  done
else
  SLURM_JOB_ID=4242 bash "$script" > /dev/null 2>&1 || rc=1
fi
exit $rc
"""


def write_exe(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "bin").mkdir()
    sbatch = write_exe(tmp_path / "bin" / "sbatch", FAKE_SBATCH)
    e = dict(os.environ, SBATCH=str(sbatch), SLURM_PL_STATUS_WAIT="0")
    e.pop("SLURM_ARRAY_TASK_ID", None)
    e.pop("SLURM_JOB_ID", None)
    return e


def slurm_pl(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SLURM_PL, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=30)


def sbatch_args(tmp_path: Path) -> list[str]:
    return (tmp_path / "bin" / "sbatch.args").read_text().splitlines()


def check_log(text: str, command: str, body: str, code: int = 0, threads: int = 1) -> None:
    lines = text.splitlines()
    assert lines[0] == f"# {command}"
    assert re.fullmatch(r"# Started at .*\d{4}", lines[1]), lines[1]
    assert lines[2].startswith("# Running on ") and "Slurm job 4242" in lines[2]
    assert lines[3] == "#"
    assert "\n".join(lines[4:-2]) == body
    assert re.fullmatch(rf"# Accounting: time=\d+ threads={threads}", lines[-2]), lines[-2]
    assert re.fullmatch(rf"# Ended \(code {code}\) at .*", lines[-1]), lines[-1]


def test_dry_run_prints_sbatch_command_and_script(tmp_path, env):
    r = slurm_pl(tmp_path, env, "--dry-run", "--gpu", "1", "--mem", "4G", "--num-threads", "2",
                 "--time", "2:00:00", "-p", "gpu", "--max-jobs-run", "2",
                 "JOB=1:3", "exp/log/train.JOB.log", "python", "train.py", "--part", "JOB")
    assert r.returncode == 0, r.stderr
    cmd_line = r.stdout.splitlines()[1]
    words = cmd_line.split()
    assert words[0] == env["SBATCH"]
    for arg in ("--parsable", "--wait", "--array=1-3%2", "--gres=gpu:1", "--mem=4G",
                "--cpus-per-task=2", "--time=2:00:00", "--partition=gpu"):
        assert arg in words, arg
    assert words[-1] == "exp/log/q/train.sh"
    script = r.stdout.split("# batch script exp/log/q/train.sh:\n", 1)[1]
    assert script.startswith("#!/usr/bin/env bash\n")
    assert "SLURM_ARRAY_TASK_ID" in script
    assert "python train.py --part JOB" in script
    # Nothing is written and nothing is submitted.
    assert not (tmp_path / "exp").exists()
    assert not (tmp_path / "bin" / "sbatch.args").exists()


def test_dry_run_without_array_or_resources(tmp_path, env):
    r = slurm_pl(tmp_path, env, "--dry-run", "--gpu", "0", "log/x.log", "echo", "hi")
    assert r.returncode == 0, r.stderr
    words = r.stdout.splitlines()[1].split()
    assert not [w for w in words if w.startswith(("--array", "--gres", "--mem", "--cpus-per-task"))]
    assert words[-1] == "log/q/x.sh"


def test_config_file_adds_sbatch_arguments(tmp_path, env):
    (tmp_path / "slurm.conf").write_text("# site settings\n--account=abc\n\n--qos=high --constraint=a100\n")
    r = slurm_pl(tmp_path, env, "--dry-run", "--config", "slurm.conf", "JOB=1:2", "l/x.JOB.log", "true")
    assert r.returncode == 0, r.stderr
    words = r.stdout.splitlines()[1].split()
    assert {"--account=abc", "--qos=high", "--constraint=a100"} <= set(words)
    assert not [w for w in words if "#" in w or "site" in w]
    r = slurm_pl(tmp_path, env, "--dry-run", "--config", "missing.conf", "l/x.log", "true")
    assert r.returncode == 1 and "missing.conf" in r.stderr


def test_array_job_succeeds(tmp_path, env):
    r = slurm_pl(tmp_path, env, "--gpu", "1", "--num-threads", "2", "JOB=1:3", "exp/log/x.JOB.log",
                 "echo", "task JOB", "|", "tr", "a-z", "A-Z")
    assert r.returncode == 0, r.stderr
    args = sbatch_args(tmp_path)
    assert "--array=1-3" in args and "--gres=gpu:1" in args and "--wait" in args
    assert args[-1] == "exp/log/q/x.sh"
    for i in (1, 2, 3):
        check_log((tmp_path / f"exp/log/x.{i}.log").read_text(),
                  f'echo "task {i}" | tr a-z A-Z', f"TASK {i}", threads=2)
        assert (tmp_path / f"exp/log/q/x.{i}.status").read_text().strip() == "0"


def test_quotes_survive_the_batch_script(tmp_path, env):
    r = slurm_pl(tmp_path, env, "JOB=1:2", "log/q.JOB.log", "printf", "item: %s\\n", "it's JOB", 'a "b"')
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "log/q.2.log").read_text().splitlines()[4:6] == ["item: it's 2", 'item: a "b"']


def test_failing_job_fails_the_array(tmp_path, env):
    r = slurm_pl(tmp_path, env, "JOB=1:3", "log/t.JOB.log", "test", "JOB", "-ne", "2")
    assert r.returncode == 1
    assert "slurm.pl: 1 / 3 failed, log is in log/t.*.log" in r.stderr
    check_log((tmp_path / "log/t.2.log").read_text(), "test 2 -ne 2", "", code=1)
    check_log((tmp_path / "log/t.3.log").read_text(), "test 3 -ne 2", "")
    assert (tmp_path / "log/q/t.2.status").read_text().strip() == "1"


def test_single_job_and_sbatch_found_on_path(tmp_path, env):
    env = dict(env, PATH=f"{tmp_path / 'bin'}:{env['PATH']}")
    del env["SBATCH"]
    r = slurm_pl(tmp_path, env, "log/one.log", "echo hi; exit 5")
    assert r.returncode == 1
    assert "slurm.pl: job failed, log is in log/one.log" in r.stderr
    assert not [a for a in sbatch_args(tmp_path) if a.startswith("--array")]
    check_log((tmp_path / "log/one.log").read_text(), "echo hi; exit 5", "hi", code=5)
    r = slurm_pl(tmp_path, env, "log/two.log", "echo", "ok")
    assert r.returncode == 0, r.stderr
    check_log((tmp_path / "log/two.log").read_text(), "echo ok", "ok")


def test_missing_status_file_is_a_failure(tmp_path, env):
    # A scheduler that accepts the job but never runs it (as if it were killed).
    write_exe(tmp_path / "bin" / "sbatch", "#!/bin/sh\necho 99\n")
    (tmp_path / "log/q").mkdir(parents=True)
    (tmp_path / "log/q/m.1.status").write_text("0\n")  # stale, from an earlier run
    r = slurm_pl(tmp_path, env, "JOB=1:2", "log/m.JOB.log", "true")
    assert r.returncode == 1
    assert "no status file from job(s) 1,2 of Slurm job 99" in r.stderr
    assert "2 / 2 failed" in r.stderr


def test_submission_failure(tmp_path, env):
    write_exe(tmp_path / "bin" / "sbatch", "#!/bin/sh\necho 'sbatch: error: invalid partition' >&2\nexit 1\n")
    r = slurm_pl(tmp_path, env, "-p", "nope", "JOB=1:2", "log/m.JOB.log", "true")
    assert r.returncode == 1
    assert "invalid partition" in r.stderr and "submission failed" in r.stderr
    env = dict(env, SBATCH=str(tmp_path / "no-such-sbatch"))
    r = slurm_pl(tmp_path, env, "log/m.log", "true")
    assert r.returncode == 1 and "cannot run" in r.stderr


def test_usage(tmp_path, env):
    r = slurm_pl(tmp_path, env, "--help")
    assert r.returncode == 0
    assert r.stdout.startswith("Usage: slurm.pl") and "--gres=gpu:G" in r.stdout
    r = slurm_pl(tmp_path, env, "JOB=1:2", "log/same.log", "true")
    assert r.returncode == 1 and "single log file" in r.stderr
    assert not (tmp_path / "bin" / "sbatch.args").exists()
