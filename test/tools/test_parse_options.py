"""tools/parse_options.sh: the option parser recipes source after declaring their defaults."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[2] / "tools"

RECIPE = """\
#!/usr/bin/env bash
set -euo pipefail
log() { echo "$*" >&2; }
export LC_ALL=C
stage=1
stop_stage=100
nj=4
ngpu=0
use_x=true
tag="a b"
help_message=$(cat <<EOF
Usage: $0 [options] <data-dir>
  Runs the tiny test recipe.
EOF
)
. ./utils/parse_options.sh || exit 1
echo "stage=$stage stop_stage=$stop_stage nj=$nj ngpu=$ngpu use_x=$use_x tag=$tag"
echo "nargs=$#"
echo "given=[$options_given]"
for a in "$@"; do echo "arg=$a"; done
echo "leaked=$(compgen -v __po_ | tr '\\n' ' ')"
declared_later=1
"""


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    """A recipe dir with run.sh and utils -> tools, as ESPnet recipes have."""
    (tmp_path / "utils").symlink_to(TOOLS, target_is_directory=True)
    script = tmp_path / "run.sh"
    script.write_text(RECIPE)
    script.chmod(0o755)
    return tmp_path


def run(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["./run.sh", *args], cwd=recipe, capture_output=True, text=True, timeout=30)


def values(out: str) -> dict[str, str]:
    first = out.splitlines()[0]
    first, tag = first.split(" tag=")
    d = dict(kv.split("=", 1) for kv in first.split())
    d["tag"] = tag
    return d


def test_defaults_kept_without_options(recipe):
    r = run(recipe)
    assert r.returncode == 0, r.stderr
    assert values(r.stdout) == {"stage": "1", "stop_stage": "100", "nj": "4", "ngpu": "0",
                                "use_x": "true", "tag": "a b"}
    assert "nargs=0" in r.stdout
    # The parser removes its own helper variables again.
    assert "leaked=\n" in r.stdout


def test_space_separated_options_and_dashes(recipe):
    r = run(recipe, "--stage", "3", "--stop-stage", "5", "--nj", "4", "--ngpu", "1")
    assert r.returncode == 0, r.stderr
    v = values(r.stdout)
    assert (v["stage"], v["stop_stage"], v["nj"], v["ngpu"]) == ("3", "5", "4", "1")


def test_equals_form_underscores_and_blanks(recipe):
    r = run(recipe, "--nj=8", "--stop_stage=7", "--tag", "x  y", "--use-x=false")
    assert r.returncode == 0, r.stderr
    v = values(r.stdout)
    assert (v["nj"], v["stop_stage"], v["tag"], v["use_x"]) == ("8", "7", "x  y", "false")


def test_positional_arguments_are_kept(recipe):
    r = run(recipe, "--stage", "2", "data/train", "--nj", "3")
    assert r.returncode == 0, r.stderr
    assert values(r.stdout)["stage"] == "2"
    # Parsing stops at the first positional argument.
    assert values(r.stdout)["nj"] == "4"
    assert "nargs=3" in r.stdout
    assert "arg=data/train\narg=--nj\narg=3\n" in r.stdout


def test_double_dash_ends_options(recipe):
    r = run(recipe, "--nj", "2", "--", "--stage", "9")
    assert r.returncode == 0, r.stderr
    assert values(r.stdout)["nj"] == "2" and values(r.stdout)["stage"] == "1"
    assert "arg=--stage\narg=9\n" in r.stdout


def test_value_may_start_with_dashes(recipe):
    r = run(recipe, "--tag", "--lr 0.1")
    assert r.returncode == 0, r.stderr
    assert values(r.stdout)["tag"] == "--lr 0.1"


def test_unknown_option_is_an_error(recipe):
    r = run(recipe, "--stage", "2", "--foo", "1")
    assert r.returncode == 1
    assert "parse_options.sh: invalid option --foo" in r.stderr
    # The hint lists the options the recipe declared.
    assert "--stop-stage" in r.stderr and "--use-x" in r.stderr
    assert r.stdout == ""


def test_option_declared_after_sourcing_is_unknown(recipe):
    r = run(recipe, "--declared-later", "2")
    assert r.returncode == 1
    assert "invalid option --declared-later" in r.stderr


def test_missing_value_is_an_error(recipe):
    r = run(recipe, "--stage", "2", "--nj")
    assert r.returncode == 1
    assert "--nj needs a value" in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("bad", ["yes", "1", "True", ""])
def test_boolean_option_takes_true_or_false(recipe, bad):
    r = run(recipe, "--use-x", bad)
    assert r.returncode == 1
    assert "--use-x takes true or false" in r.stderr


def test_boolean_option_accepts_false(recipe):
    r = run(recipe, "--use_x", "false")
    assert r.returncode == 0, r.stderr
    assert values(r.stdout)["use_x"] == "false"


def test_help_lists_options_with_defaults(recipe):
    r = run(recipe, "--nj", "6", "--help", "--stage", "not-reached")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("Usage: ./run.sh [options] <data-dir>\n  Runs the tiny test recipe.\n")
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith("  --")}
    assert lines["--stage"] == ["1"]
    assert lines["--stop-stage"] == ["100"]
    assert lines["--nj"] == ["6"]  # values given before --help are shown
    assert lines["--ngpu"] == ["0"]
    assert lines["--use-x"][0] == "true"
    assert lines["--tag"] == ['"a', 'b"']
    assert "--config" in lines and "--help," in lines
    # Neither help_message, the log() function nor later variables are options.
    assert not {"--help-message", "--log", "--declared-later", "--LC-ALL"} & set(lines)
    # Nothing of the recipe body ran.
    assert "stage=" not in out


def test_short_help(recipe):
    r = run(recipe, "-h")
    assert r.returncode == 0
    assert "--stop-stage" in r.stdout and "nargs" not in r.stdout


def test_config_file_is_applied_before_options(recipe):
    (recipe / "conf.sh").write_text("# a comment\nnj=11\nstage=7\nuse_x=false\n")
    r = run(recipe, "--stage", "9", "--config", "conf.sh", "pos")
    assert r.returncode == 0, r.stderr
    v = values(r.stdout)
    # Command-line options win over the config, whatever their order.
    assert (v["stage"], v["nj"], v["use_x"]) == ("9", "11", "false")
    assert "nargs=1" in r.stdout and "arg=pos" in r.stdout


def test_config_equals_form_and_missing_file(recipe):
    (recipe / "c2").write_text("ngpu=2\n")
    r = run(recipe, "--config=c2")
    assert r.returncode == 0, r.stderr
    assert values(r.stdout)["ngpu"] == "2"
    r = run(recipe, "--config", "nope.conf")
    assert r.returncode == 1
    assert "nope.conf" in r.stderr


def test_works_when_sourced_with_a_path(tmp_path):
    """Sourcing tools/parse_options.sh by path from a script elsewhere."""
    script = tmp_path / "x.sh"
    script.write_text('nj=1\nverbose=false\n. "$TOOLS/parse_options.sh"\necho "$nj $verbose $*"\n')
    env = dict(os.environ, TOOLS=str(TOOLS))
    r = subprocess.run(["bash", str(script), "--nj", "5", "--verbose", "true", "a"],
                       capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "5 true a\n"
    r = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0
    assert "--nj" in r.stdout and "--verbose" in r.stdout


def test_options_given_lists_the_command_line_options(recipe):
    (recipe / "conf.sh").write_text("ngpu=3\n")
    r = run(recipe, "--stage", "1", "--nj=2", "--config", "conf.sh", "--stop-stage", "4", "--stage", "2")
    assert r.returncode == 0, r.stderr
    # Each name once, in the order first given; values from --config are not listed.
    assert "given=[stage nj stop_stage]" in r.stdout
    r = run(recipe, "pos")
    assert "given=[]" in r.stdout
