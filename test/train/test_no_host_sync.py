"""A pre-training step (forward, every loss, backward, the update) never makes the host wait for the
device: HostSyncRecorder sees every call that would, on a CPU as on a GPU."""
import torch

from mslam.train.distributed import DistEnv
from mslam.train.host_sync import HostSyncRecorder
from mslam.train.trainer import PretrainTrainer


def test_the_sync_recorder_sees_what_would_sync():
    x = torch.arange(6.0)
    with HostSyncRecorder() as rec:
        x.sum().item()
        x.tolist()
        x.nonzero()
        x[x > 2]
        x[x > 4] = 0.0
        bool(x.any())
        float(x[0])
        int(x.max())
        torch.unique(x)
        x.masked_select(x > 1)
        torch.where(x > 2)
        torch.nn.functional.ctc_loss(torch.randn(4, 1, 3).log_softmax(-1), torch.tensor([[1]]),
                                     torch.tensor([4]), torch.tensor([1]))
    assert len(rec.calls) == 12, rec.report()
    with HostSyncRecorder() as rec:  # these launch work and never wait
        x[1:3]
        x[torch.tensor([0, 2])]
        torch.where(x > 2, x, 0.0)
        x.masked_fill(x > 2, 0.0).sum()
        (x > 2).any()
    assert not rec.calls, rec.report()


def test_a_pretraining_step_never_syncs(tiny_config, tmp_path):
    cfg = tiny_config(**{"monitor.every": 0, "trainer.grad_accum": 2})
    assert cfg.objective.variant == "mslam-ctc"
    trainer = PretrainTrainer(cfg, tmp_path / "exp", DistEnv(), resume=False)
    trainer.model.ctc_on_device = True  # the accelerator's CTC (a CPU uses torch's, which reads lengths)
    batch = trainer.data[1]
    micro = batch.micro_batches[0]
    assert micro.speech is not None and micro.text is not None and micro.paired is not None
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with HostSyncRecorder() as rec:
        result = trainer.train_step(batch)
    assert not rec.calls, rec.report()
    # and the step did its work: every loss, finite, and an update by the fused optimiser
    assert trainer.optimizer.param_groups[0]["fused"]
    assert not bool(result.skipped) and torch.isfinite(result.sums["loss"])
    assert {"w2v_contrastive", "w2v_mlm", "text_mlm", "tlm_text", "tlm_speech", "ctc"} <= set(result.sums)
    changed = [k for k, v in trainer.model.state_dict().items() if not torch.equal(before[k], v)]
    assert len(changed) > len(before) // 2
