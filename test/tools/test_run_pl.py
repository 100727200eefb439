"""tools/run.pl: the local, Kaldi-compatible job launcher."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[2] / "tools"
RUN_PL = str(TOOLS / "run.pl")


def run_pl(cwd: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([RUN_PL, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def check_log(text: str, command: str, body: str, code: int = 0, threads: int = 1) -> None:
    lines = text.splitlines()
    assert lines[0] == f"# {command}"
    assert re.fullmatch(r"# Started at .*\d{4}", lines[1]), lines[1]
    assert lines[2] == "#"
    assert "\n".join(lines[3:-2]) == body
    assert re.fullmatch(rf"# Accounting: time=\d+ threads={threads}", lines[-2]), lines[-2]
    assert re.fullmatch(rf"# Ended \(code {code}\) at .*", lines[-1]), lines[-1]


def test_job_array_writes_one_log_per_job(tmp_path):
    r = run_pl(tmp_path, "JOB=1:3", "exp/log/x.JOB.log", "echo", "job", "JOB", "of", "data.JOB")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    logs = sorted(p.name for p in (tmp_path / "exp/log").iterdir())
    assert logs == ["x.1.log", "x.2.log", "x.3.log"]
    for i in (1, 2, 3):
        check_log((tmp_path / f"exp/log/x.{i}.log").read_text(),
                  f"echo job {i} of data.{i}", f"job {i} of data.{i}")


def test_stdout_and_stderr_go_to_the_log(tmp_path):
    r = run_pl(tmp_path, "log/a.log", "echo out; echo err >&2")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""
    check_log((tmp_path / "log/a.log").read_text(), "echo out; echo err >&2", "out\nerr")


def test_a_failing_job_fails_the_array(tmp_path):
    r = run_pl(tmp_path, "JOB=1:3", "log/t.JOB.log", "test", "JOB", "-ne", "2")
    assert r.returncode == 1
    assert "run.pl: 1 / 3 failed, log is in log/t.*.log" in r.stderr
    check_log((tmp_path / "log/t.1.log").read_text(), "test 1 -ne 2", "")
    check_log((tmp_path / "log/t.2.log").read_text(), "test 2 -ne 2", "", code=1)
    check_log((tmp_path / "log/t.3.log").read_text(), "test 3 -ne 2", "")


def test_single_job_exit_code_is_logged(tmp_path):
    r = run_pl(tmp_path, "log/one.log", "bash", "-c", "echo bye; exit 3")
    assert r.returncode == 1
    assert "run.pl: job failed, log is in log/one.log" in r.stderr
    check_log((tmp_path / "log/one.log").read_text(), 'bash -c "echo bye; exit 3"', "bye", code=3)


def test_max_jobs_run_1_runs_all_jobs_one_at_a_time(tmp_path):
    step = "echo start JOB >> trace; sleep 0.2; echo end JOB >> trace"
    r = run_pl(tmp_path, "--max-jobs-run", "1", "JOB=1:4", "log/s.JOB.log", step)
    assert r.returncode == 0, r.stderr
    assert all((tmp_path / f"log/s.{i}.log").exists() for i in range(1, 5))
    trace = (tmp_path / "trace").read_text().split("\n")[:-1]
    assert trace == [f"{what} {i}" for i in range(1, 5) for what in ("start", "end")]


def test_jobs_run_in_parallel(tmp_path):
    step = "echo start >> trace; sleep 0.5; echo end >> trace"
    r = run_pl(tmp_path, "--max-jobs-run", "3", "JOB=1:3", "log/p.JOB.log", step)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "trace").read_text() == "start\n" * 3 + "end\n" * 3


def test_pipes_and_redirections(tmp_path):
    # Shell syntax as separate words, as Kaldi/ESPnet recipes write it (`\|`) ...
    r = run_pl(tmp_path, "JOB=1:2", "log/p.JOB.log", "echo", "hello JOB", "|", "tr", "a-z", "A-Z",
               ">", "out.JOB")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.1").read_text() == "HELLO 1\n"
    assert (tmp_path / "out.2").read_text() == "HELLO 2\n"
    # ... or the whole command line as one argument.
    r = run_pl(tmp_path, "log/q.log", "printf 'b\\na\\n' | sort | head -n 1")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "log/q.log").read_text().splitlines()[3] == "a"
    # pipefail is not on: the status is the last command's.
    r = run_pl(tmp_path, "log/f.log", "echo x", "|", "false")
    assert r.returncode == 1


def test_quoting_of_words_with_blanks(tmp_path):
    # As in Kaldi: words without blanks are used as they are (so `|`, `>` or `$x` work),
    # words with blanks are double-quoted, or single-quoted if they contain a double quote.
    r = run_pl(tmp_path, "log/w.log", "printf", "item: %s\\n", "a b", 'say "hi"', "it's ok", "x'y\"z w")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "log/w.log").read_text().splitlines()[3:7] == [
        "item: a b", 'item: say "hi"', "item: it's ok", "item: x'y\"z w"]


def test_cluster_options_are_accepted(tmp_path):
    (tmp_path / "cluster.conf").write_text("--account=abc\n")
    r = run_pl(tmp_path, "--gpu", "1", "--mem", "4G", "--num-threads", "2", "--time", "1:00:00",
               "--config", "cluster.conf", "--num_threads=3", "--partition", "x",
               "JOB=2:3", "log/o.JOB.log", "echo", "JOB")
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "log/o.1.log").exists()
    check_log((tmp_path / "log/o.3.log").read_text(), "echo 3", "3", threads=3)


def test_other_job_variable_name(tmp_path):
    r = run_pl(tmp_path, "N=1:2", "log/n.N.log", "echo", "N")
    assert r.returncode == 0, r.stderr
    check_log((tmp_path / "log/n.2.log").read_text(), "echo 2", "2")


def test_usage_errors(tmp_path):
    r = run_pl(tmp_path, "--help")
    assert r.returncode == 0
    assert r.stdout.startswith("Usage: run.pl") and "--max-jobs-run" in r.stdout
    r = run_pl(tmp_path)
    assert r.returncode == 1 and "Usage: run.pl" in r.stderr
    # An array into one log file would overwrite it.
    r = run_pl(tmp_path, "JOB=1:2", "log/same.log", "echo", "JOB")
    assert r.returncode == 1 and "single log file" in r.stderr
    assert not (tmp_path / "log").exists()
    r = run_pl(tmp_path, "--max-jobs-run", "0", "log/x.log", "true")
    assert r.returncode == 1 and "--max-jobs-run" in r.stderr
    r = run_pl(tmp_path, "--mem")
    assert r.returncode == 1 and "needs a value" in r.stderr
