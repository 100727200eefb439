"""ESPnet's own ASR training and decoding programs with `encoder: mslam`, on the egs/mini tiny corpus.

Training runs `python -m mslam.espnet.asr_train` (= espnet2.bin.asr_train with the classes registered),
decoding `python -m mslam.espnet.run -m espnet2.bin.asr_inference` (what asr.sh runs with
`--python "python3 -m mslam.espnet.run"`), each in a fresh process as a recipe would. The data is in
ESPnet's dump layout (wav.scp, text, shape files written here instead of by collect_stats).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

pytest.importorskip("espnet2")

from mslam.data.kaldi import DataDir  # noqa: E402

TRAIN_UTTS, VALID_UTTS = 8, 4
EPOCHS, BATCH, FREEZE = 12, 4, 2      # 2 iterations per epoch: the encoder is frozen during epoch 1


def dump_dir(src: Path, dst: Path, n: int) -> list[str]:
    """The n shortest utterances of a Kaldi data dir as an ESPnet dump dir: wav.scp, text, speech_shape."""
    d = DataDir(src)
    num_samples = {u: int(v) for u, v in d.tables["utt2num_samples"].items()}
    utts = sorted(sorted(num_samples, key=lambda u: (num_samples[u], u))[:n])
    dst.mkdir(parents=True)
    (dst / "wav.scp").write_text("".join(f"{u} {d.tables['wav.scp'][u]}\n" for u in utts))
    (dst / "text").write_text("".join(f"{u} {d.tables['text'][u]}\n" for u in utts), encoding="utf-8")
    (dst / "speech_shape").write_text("".join(f"{u} {num_samples[u]}\n" for u in utts))
    return utts


def run(args: list[str], cwd: Path, log: Path) -> None:
    # One thread: a tiny model gains nothing from more, and a busy 2-core CI machine loses a lot.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(log, "w") as f:
        r = subprocess.run([sys.executable, *args], cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT,
                           timeout=600)
    if r.returncode:
        pytest.fail(f"{' '.join(args[:3])} failed ({r.returncode}):\n" + log.read_text()[-5000:])


@pytest.mark.slow
def test_espnet_asr_train_with_the_mslam_encoder(tmp_path, mini_corpus, tiny_checkpoint):
    pretrain_dir, step_dir, pretrained = tiny_checkpoint
    train = dump_dir(mini_corpus / "asr" / "train", tmp_path / "dump" / "train", TRAIN_UTTS)
    valid = dump_dir(mini_corpus / "asr" / "dev", tmp_path / "dump" / "valid", VALID_UTTS)
    # A char token list (as asr.sh stage 5 writes it) and the text shape files (as stage 10 does).
    texts = {}
    for split in ("train", "valid"):
        for line in (tmp_path / "dump" / split / "text").read_text(encoding="utf-8").splitlines():
            utt, text = line.split(" ", 1)
            texts[utt] = text
    chars = sorted({"<space>" if c == " " else c for t in texts.values() for c in t})
    tokens = ["<blank>", "<unk>", *chars, "<sos/eos>"]
    (tmp_path / "tokens.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    for split, utts in (("train", train), ("valid", valid)):
        (tmp_path / "dump" / split / "text_shape.char").write_text(
            "".join(f"{u} {len(texts[u])},{len(tokens)}\n" for u in utts))

    config = {  # what mslam/espnet/README.md tells a recipe to use, sized for a CPU test
        "frontend": "mslam_fbank", "frontend_conf": {"fs": "16k"},
        "specaug": None, "normalize": None,
        "encoder": "mslam", "encoder_conf": {"checkpoint": str(pretrain_dir), "freeze_steps": FREEZE},
        "decoder": None, "model_conf": {"ctc_weight": 1.0},
        "optim": "adam", "optim_conf": {"lr": 0.003}, "scheduler": None,
        "batch_type": "unsorted", "batch_size": BATCH, "max_epoch": EPOCHS, "keep_nbest_models": EPOCHS,
        "num_workers": 0, "seed": 0, "use_tensorboard": False, "use_matplotlib": False,
    }
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(config))
    data_opts = []
    for phase, split in (("train", "train"), ("valid", "valid")):
        d = f"dump/{split}"
        data_opts += [f"--{phase}_data_path_and_name_and_type", f"{d}/wav.scp,speech,sound",
                      f"--{phase}_data_path_and_name_and_type", f"{d}/text,text,text",
                      f"--{phase}_shape_file", f"{d}/speech_shape", f"--{phase}_shape_file", f"{d}/text_shape.char"]
    run(["-m", "mslam.espnet.asr_train", "--config", "train.yaml", "--output_dir", "exp", "--ngpu", "0",
         "--token_type", "char", "--token_list", "tokens.txt", "--use_preprocessor", "true", *data_opts],
        tmp_path, tmp_path / "train.log")

    exp = tmp_path / "exp"
    stats = torch.load(exp / "checkpoint.pth", map_location="cpu", weights_only=False)["reporter"]["stats"]
    losses = [stats[e]["train"]["loss"] for e in range(1, EPOCHS + 1)]
    assert losses[-1] < 0.6 * losses[0], f"training loss per epoch: {losses}"
    assert min(losses[-3:]) < min(losses[:3])

    # The mslam encoder: the checkpoint's weights after the frozen epoch 1, fine-tuned by the end.
    speech_path = {k: v for k, v in pretrained.encoder.state_dict().items() if not k.startswith("text_frontend.")}

    def encoder_state(epoch: int) -> dict:
        state = torch.load(exp / f"{epoch}epoch.pth", map_location="cpu")
        return {k[len("encoder.encoder."):]: v for k, v in state.items() if k.startswith("encoder.encoder.")}

    first, last = encoder_state(1), encoder_state(EPOCHS)
    assert first.keys() == speech_path.keys()
    assert all(torch.equal(first[k], speech_path[k]) for k in speech_path)
    assert sum(not torch.equal(last[k], speech_path[k]) for k in speech_path) > len(speech_path) // 2
    assert yaml.safe_load((exp / "config.yaml").read_text())["encoder"] == "mslam"

    # Decoding with ESPnet's inference program, through the recipe launcher.
    run(["-m", "mslam.espnet.run", "-m", "espnet2.bin.asr_inference", "--ngpu", "0", "--batch_size", "1",
         "--asr_train_config", "exp/config.yaml", "--asr_model_file", f"exp/{EPOCHS}epoch.pth",
         "--data_path_and_name_and_type", "dump/valid/wav.scp,speech,sound", "--output_dir", "decode",
         "--ctc_weight", "1.0", "--beam_size", "2", "--lm_weight", "0"],
        tmp_path, tmp_path / "decode.log")
    hyps = (tmp_path / "decode" / "1best_recog" / "text").read_text(encoding="utf-8").splitlines()
    assert sorted(line.split(" ", 1)[0] for line in hyps) == valid
