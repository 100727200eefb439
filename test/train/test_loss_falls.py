"""A short pre-training run of the tiny model on the tiny corpus: every loss term falls."""
import pytest

from mslam.train.progress import read_json_log
from train_test_utils import pretrain_command, run_pretrain

TERMS = ("loss", "w2v_contrastive", "w2v_diversity", "w2v_mlm", "text_mlm", "tlm_speech", "tlm_text", "ctc")


@pytest.mark.slow
def test_every_loss_term_falls(tiny_corpus, tmp_path):
    run_pretrain(pretrain_command(tiny_corpus, tmp_path, **{
        "trainer.max_steps": 120, "trainer.save_every": 120, "optim.warmup_steps": 10, "optim.peak_lr": 2e-3,
        "data.num_workers": 1}))
    log = read_json_log(tmp_path / "train.jsonl")
    assert len(log) == 120
    for term in TERMS:
        values = [r[term] for r in log]
        first, last = sum(values[:10]) / 10, sum(values[-40:]) / 40
        assert last < first, f"{term}: {first:.3f} (steps 1-10) -> {last:.3f} (steps 81-120)"
