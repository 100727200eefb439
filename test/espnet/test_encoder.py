"""encoder: mslam / frontend: mslam_fbank: the same numbers as mslam, freeze_steps, checkpoint errors."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch.nn.utils.rnn import pad_sequence

pytest.importorskip("espnet2")

from espnet2.asr.ctc import CTC  # noqa: E402
from espnet2.asr.espnet_model import ESPnetASRModel  # noqa: E402
from espnet2.fileio.sound_scp import SoundScpReader  # noqa: E402
from espnet2.torch_utils.initialize import initialize  # noqa: E402

from mslam.config import ConfigError  # noqa: E402
from mslam.data.features import CMVNStats, load_features  # noqa: E402
from mslam.data.kaldi import DataDir  # noqa: E402
from mslam.espnet.encoder import MslamEncoder  # noqa: E402
from mslam.espnet.frontend import MslamFbankFrontend  # noqa: E402
from mslam.espnet.run import tasks_for  # noqa: E402
from mslam.train.checkpoint import CheckpointError  # noqa: E402

TOKENS = ["<blank>", "<unk>", "a", "b", "<sos/eos>"]


def encoder_weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def speech_only(model) -> dict[str, torch.Tensor]:
    """The checkpoint model's encoder weights, less the text front end."""
    return {k: v for k, v in model.encoder.state_dict().items() if not k.startswith("text_frontend.")}


def test_wrapped_encoder_equals_mslam_joint_encoder(tmp_path, mini_corpus, make_checkpoint):
    """Same waveforms: ESPnet's sound reader -> mslam_fbank -> mslam encoder (inside ESPnetASRModel.encode)
    gives mslam's own encoder output (mslam's features, global CMVN, JointEncoder.forward)."""
    data = DataDir(mini_corpus / "asr" / "dev")
    ids = data.utt_ids[:3]
    feats = [load_features(data.utterance(u)) for u in ids]
    assert len({len(f) for f in feats}) == 3, "want different lengths (padding)"
    stats = CMVNStats(80)
    for f in feats:
        stats.add(f)
    stats.save(tmp_path / "cmvn.npz")
    step_dir, model = make_checkpoint(tmp_path / "exp", overrides=[f"data.cmvn={tmp_path / 'cmvn.npz'}"])

    model.eval()
    lens = torch.tensor([len(f) for f in feats])
    with torch.no_grad():
        ref, ref_lens = model.encoder(pad_sequence([stats.normalize(f) for f in feats], batch_first=True), lens)

    reader = SoundScpReader(str(data.path / "wav.scp"), dtype="float32")
    waves = []
    for u in ids:
        rate, wave = reader[u]
        assert rate == 16000
        waves.append(torch.from_numpy(wave))
    speech = pad_sequence(waves, batch_first=True)
    speech_lens = torch.tensor([len(w) for w in waves])
    frontend = MslamFbankFrontend(fs="16k")
    encoder = MslamEncoder(input_size=frontend.output_size(), checkpoint=str(step_dir))  # cmvn: auto
    assert encoder.cmvn_path == str(tmp_path / "cmvn.npz")
    assert encoder.output_size() == 64
    asr = ESPnetASRModel(vocab_size=len(TOKENS), token_list=TOKENS, frontend=frontend, specaug=None,
                         normalize=None, preencoder=None, encoder=encoder, postencoder=None, decoder=None,
                         ctc=CTC(len(TOKENS), encoder.output_size()), joint_network=None, ctc_weight=1.0).eval()
    with torch.no_grad():
        fb, fb_lens = frontend(speech, speech_lens)
        out, out_lens = asr.encode(speech, speech_lens)
        direct, direct_lens, states = encoder(fb, fb_lens)
    assert torch.equal(fb_lens, lens)
    for b, f in enumerate(feats):
        torch.testing.assert_close(fb[b, :len(f)], f, atol=1e-5, rtol=0)
    assert states is None
    assert torch.equal(out_lens.cpu(), ref_lens) and torch.equal(direct_lens, ref_lens)
    for b, n in enumerate(ref_lens.tolist()):
        torch.testing.assert_close(out[b, :n], ref[b, :n], atol=1e-5, rtol=0)
        torch.testing.assert_close(direct[b, :n], ref[b, :n], atol=1e-5, rtol=0)


def test_freeze_steps(tiny_checkpoint):
    """No update of the mslam encoder in the first K training forwards; updates after; eval does not count."""
    _, step_dir, _ = tiny_checkpoint
    torch.manual_seed(0)
    encoder = MslamEncoder(input_size=80, checkpoint=str(step_dir), freeze_steps=2)
    head = torch.nn.Linear(encoder.output_size(), 5)
    optim = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=1e-2)
    feats, lens = torch.randn(2, 60, 80), torch.tensor([60, 45])
    start = encoder_weights(encoder.encoder)

    def step() -> None:
        encoder.train()
        out, olens, _ = encoder(feats, lens)
        optim.zero_grad()
        head(out).square().mean().backward()
        optim.step()

    encoder.eval()
    encoder(feats, lens)  # eval forwards are not training steps
    head_before = head.weight.detach().clone()
    for k in range(2):
        assert encoder.frozen()
        step()
        assert int(encoder.num_updates) == k + 1
        assert all(p.grad is None for p in encoder.parameters())
        assert_same_weights(encoder_weights(encoder.encoder), start)
        assert encoder.encoder.training  # back in training mode after the frozen forward
    assert not torch.equal(head.weight, head_before), "the rest of the model trains meanwhile"
    assert not encoder.frozen()
    step()
    after = encoder_weights(encoder.encoder)
    changed = [k for k in start if not torch.equal(start[k], after[k])]
    assert len(changed) > len(start) // 2, "fine-tuning starts at step K + 1"
    assert "num_updates" in encoder.state_dict()  # saved with ESPnet's checkpoints: resumes keep counting


def test_freeze_steps_zero_trains_from_the_start(tiny_checkpoint):
    _, step_dir, _ = tiny_checkpoint
    encoder = MslamEncoder(input_size=80, checkpoint=str(step_dir)).train()
    out, _, _ = encoder(torch.randn(1, 40, 80), torch.tensor([40]))
    out.sum().backward()
    assert all(p.grad is not None for p in encoder.encoder.parameters())


def test_loads_the_checkpoint_weights_and_espnet_init_keeps_them(tiny_checkpoint):
    """Step dir or experiment dir; ESPnet's `init: xavier_uniform` re-initialises every parameter, then
    the encoder's reload_pretrained_parameters hook puts the mslam weights back."""
    out_dir, step_dir, model = tiny_checkpoint
    for source in (step_dir, out_dir, out_dir / "checkpoints", step_dir / "state.pt", step_dir / "meta.json"):
        encoder = MslamEncoder(input_size=80, checkpoint=str(source))
        assert_same_weights(encoder_weights(encoder.encoder), speech_only(model))
    assert encoder.encoder.text_frontend is None
    wrapper = torch.nn.Module()
    wrapper.encoder, wrapper.head = encoder, torch.nn.Linear(64, 4)
    initialize(wrapper, "xavier_uniform")
    assert_same_weights(encoder_weights(encoder.encoder), speech_only(model))


def test_experiment_dir_takes_the_newest_intact_checkpoint(tmp_path, make_checkpoint):
    _, old = make_checkpoint(tmp_path / "exp", step=3, seed=1)
    new_dir, new = make_checkpoint(tmp_path / "exp", step=7, seed=2)
    encoder = MslamEncoder(input_size=80, checkpoint=str(tmp_path / "exp"))
    assert encoder.checkpoint.endswith("step-00000007")
    assert_same_weights(encoder_weights(encoder.encoder), speech_only(new))
    with open(new_dir / "state.pt", "r+b") as f:  # corrupt the newest: the previous one is used
        f.seek(100)
        f.write(b"\0" * 16)
    encoder = MslamEncoder(input_size=80, checkpoint=str(tmp_path / "exp"))
    assert encoder.checkpoint.endswith("step-00000003")
    assert_same_weights(encoder_weights(encoder.encoder), speech_only(old))
    with pytest.raises(CheckpointError, match="unusable"):  # naming the broken one itself
        MslamEncoder(input_size=80, checkpoint=str(new_dir))


def test_bad_checkpoint_paths_give_clear_errors(tmp_path, tiny_checkpoint, make_checkpoint):
    missing = tmp_path / "no" / "such" / "step-00000001"
    with pytest.raises(CheckpointError, match=r"no such file or directory.*checkpoints/step-N"):
        MslamEncoder(input_size=80, checkpoint=str(missing))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="neither a checkpoint dir"):
        MslamEncoder(input_size=80, checkpoint=str(tmp_path / "empty"))
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    with pytest.raises(CheckpointError, match="cannot be read as a checkpoint"):
        MslamEncoder(input_size=80, checkpoint=str(tmp_path / "notes.txt"))
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an mslam checkpoint"):
        MslamEncoder(input_size=80, checkpoint=str(tmp_path / "other.pt"))
    # Weights of another shape than the checkpoint's own config says (e.g. a config edited by hand).
    step_dir, model = make_checkpoint(tmp_path / "exp")
    state = torch.load(step_dir / "state.pt", weights_only=False)
    state["config"]["model"]["encoder"]["d_model"] = 128
    torch.save(state, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="do not fit.*other shape"):
        MslamEncoder(input_size=80, checkpoint=str(tmp_path / "mismatch.pt"))
    _, step_dir, _ = tiny_checkpoint
    with pytest.raises(ValueError, match="takes 80-d fbank"):
        MslamEncoder(input_size=83, checkpoint=str(step_dir))


def test_cmvn_options(tmp_path, make_checkpoint):
    step_dir, _ = make_checkpoint(tmp_path / "exp", overrides=["data.cmvn=gone/cmvn.npz"])
    with pytest.raises(ConfigError, match="cmvn: PATH"):
        MslamEncoder(input_size=80, checkpoint=str(step_dir))
    stats = CMVNStats(80)
    stats.add(torch.randn(50, 80) * 3 + 1)
    stats.save(tmp_path / "cmvn.npz")
    encoder = MslamEncoder(input_size=80, checkpoint=str(step_dir), cmvn=str(tmp_path / "cmvn.npz"))
    torch.testing.assert_close(encoder.cmvn_mean, torch.as_tensor(stats.mean, dtype=torch.float32))
    encoder = MslamEncoder(input_size=80, checkpoint=str(step_dir), cmvn="none")
    assert encoder.cmvn_path is None and torch.equal(encoder.cmvn_std, torch.ones(80))
    with pytest.raises(ConfigError, match="no such file"):
        MslamEncoder(input_size=80, checkpoint=str(step_dir), cmvn=str(tmp_path / "nope.npz"))


def test_frontend_wants_16k():
    assert MslamFbankFrontend(fs=16000).output_size() == 80
    with pytest.raises(ValueError, match="16 kHz"):
        MslamFbankFrontend(fs="8k")


def test_run_registers_for_asr_and_st_programs_only():
    assert tasks_for("espnet2.bin.asr_train") == ("asr",)
    assert tasks_for("espnet2.bin.asr_inference") == ("asr",)
    assert tasks_for("espnet2.bin.st_train") == ("st",)
    assert tasks_for("espnet2.bin.s2st_train") == ()
    assert tasks_for("espnet2.bin.launch") == ()
    assert tasks_for("espnet2.bin.tokenize_text") == ()


def test_run_passes_other_programs_through():
    """`--python "python3 -m mslam.espnet.run"` must not change what other recipe commands do."""
    code = "import sys; print(sys.argv[1:], 'espnet2.tasks.asr' in sys.modules)"
    r = subprocess.run([sys.executable, "-m", "mslam.espnet.run", "-c", code, "a", "--b=c"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['a', '--b=c'] False"
    r = subprocess.run([sys.executable, "-m", "mslam.espnet.run", "-m", "json.tool", "--help"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "usage" in r.stdout, r.stderr


def test_mslam_core_does_not_need_espnet():
    """Every mslam module but the bridge imports with ESPnet unavailable, and none imports the bridge."""
    code = """
import importlib, pkgutil, sys
sys.modules["espnet2"] = None
sys.modules["espnet"] = None
def walk(package):
    for m in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        if m.name != "mslam.espnet":
            module = importlib.import_module(m.name)
            if m.ispkg:
                walk(module)
walk(importlib.import_module("mslam"))
bridge = sorted(k for k in sys.modules if k.startswith("mslam.espnet"))
assert not bridge, bridge
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr
