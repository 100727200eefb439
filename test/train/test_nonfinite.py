"""A NaN in the input: the step is skipped and logged, training goes on; NaN after NaN stops the run."""
import kaldiio
import numpy as np
import pytest
import torch

from mslam.data.kaldi import write_table
from mslam.train.checkpoint import latest_valid_checkpoint, load_checkpoint
from mslam.train.progress import read_json_log
from mslam.train.trainer import NonFiniteLossError, pretrain


def feats_dir(path, nan_utts):
    """A data dir of dumped features (feats.scp + utt2num_frames); `nan_utts` have a NaN frame."""
    path.mkdir(parents=True)
    rng = np.random.default_rng(0)
    frames = {}
    with kaldiio.WriteHelper(f"ark,scp:{path / 'feats.ark'},{path / 'feats.scp'}") as w:
        for i in range(5):
            utt = f"utt{i}"
            x = rng.standard_normal((120 + 10 * i, 80)).astype(np.float32)
            if utt in nan_utts:
                x[7, 3] = np.nan
            w(utt, x)
            frames[utt] = len(x)
    write_table(path / "utt2num_frames", frames)
    return path


def speech_only(tiny_config, data, **extra):
    return tiny_config(**{"objective.variant": "w2v-bert", "data.text": "{dirs: []}", "data.paired": "{dirs: []}",
                          "data.speech": f"{{dirs: [{data}], batch_sequences: 1}}", **extra})


def test_a_nan_utterance_skips_its_steps_and_training_goes_on(tiny_config, tmp_path, caplog):
    data = feats_dir(tmp_path / "feats", nan_utts={"utt2"})
    cfg = speech_only(tiny_config, data, **{"trainer.max_steps": 15, "trainer.save_every": 15})
    pretrain(cfg, tmp_path / "exp", progress_bar=False)
    log = read_json_log(tmp_path / "exp" / "train.jsonl")
    skipped = [r["step"] for r in log if r["skipped_steps"]]
    assert skipped and len(skipped) < 15
    assert all("loss" not in r for r in log if r["skipped_steps"])
    assert all(np.isfinite(r["loss"]) for r in log if not r["skipped_steps"])
    assert "utt2" in caplog.text and "non-finite loss" in caplog.text
    params = load_checkpoint(latest_valid_checkpoint(tmp_path / "exp"))["model"]
    assert all(torch.isfinite(v).all() for v in params.values() if v.is_floating_point())


def test_nan_after_nan_stops_the_run_naming_the_utterances(tiny_config, tmp_path):
    data = feats_dir(tmp_path / "feats", nan_utts={f"utt{i}" for i in range(5)})
    cfg = speech_only(tiny_config, data, **{"trainer.max_steps": 20, "trainer.max_nonfinite_in_row": 3})
    with pytest.raises(NonFiniteLossError, match=r"3 steps in a row.*step 3.*utt\d"):
        pretrain(cfg, tmp_path / "exp", progress_bar=False)
