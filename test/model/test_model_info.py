"""Parameter counts of the paper-size configs (built on the meta device)."""
import subprocess
import sys

import pytest

from mslam.bin.model_info import main, model_info


@pytest.mark.parametrize("name,low,high", [("mslam_0.6b", 0.55e9, 0.65e9), ("mslam_2b", 1.75e9, 2.1e9)])
def test_paper_sizes(name, low, high):
    counts = model_info(name)
    assert low <= counts["total"] <= high, counts
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")
    assert counts["shared_stack"] > counts["speech_stack"] > counts["speech_frontend"]


def test_model_info_command(capsys):
    out = subprocess.run([sys.executable, "-m", "mslam.bin.model_info", "--config", "mslam_0.6b"],
                         capture_output=True, text=True, check=True).stdout
    for label in ("speech front end", "text front end", "speech stack", "shared stack", "quantiser", "heads", "total"):
        assert label in out
    assert main(["--config", "nope"]) == 2
    assert "shipped" in capsys.readouterr().err
