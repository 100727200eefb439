"""Fine-tuning end to end on the tiny toy corpus: every task overfits a few utterances to exact
output through the real commands' functions (train -> final.pt -> decode), --init from a
pre-training run versus from scratch, resume, early stopping, and the learning-rate groups."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mslam.bin.decode import decode
from mslam.config import ConfigError
from mslam.data.kaldi import read_table
from mslam.model.finetune import dropout_rates
from mslam.tasks.finetune import build_finetune_model, build_finetune_optimizer, finetune, load_finetune_config
from testlib import TINY_HEAD, TINY_MODEL


def tiny_config(corpus: Path, task: str, train: str, steps: int, lr: float = 2e-3, **sections):
    cfg = {"task": task, "model": TINY_MODEL, "head": TINY_HEAD, "spec_augment": None,
           "data": {"root": str(corpus), "train": [train], "dev": [train], "char_vocab": "chars.txt",
                    "spm_vocab_size": 60, "num_workers": 0},
           "optim": {"encoder_lr": lr, "encoder_warmup": 10, "head_lr": lr, "head_warmup": 10},
           "trainer": {"max_steps": steps, "eval_every": steps, "save_every": steps, "log_every": 10,
                       "tensorboard": False, "device": "cpu", "average_best": 1}}
    for name, values in sections.items():
        cfg[name] = {**(cfg.get(name) or {}), **values} if isinstance(values, dict) else values
    return load_finetune_config(cfg)


def references(data: Path, table: str) -> dict[str, str]:
    return read_table(data / table)


# --------------------------------------------------------------------------- overfitting, per task
OVERFIT = {  # name: (task, data dir, reference table, steps, learning rate, extra config)
    "intent": ("intent", "few/intent", "utt2intent", 60, 2e-3, {}),
    "langid": ("langid", "few/langid", "utt2lang", 60, 2e-3, {}),
    "asr-ctc": ("asr", "few/asr", "text", 200, 5e-3, {"head": {"asr_decoder": "ctc"}}),
    "asr-rnnt": ("asr", "few/asr", "text", 300, 5e-3, {}),
    "st+mt": ("st", "few/st", "text.en", 150, 3e-3, {"data": {"mt_train": ["few/mt"]}}),
    # speech only, no character vocabulary (no text input), with CTC on the source transcript
    "st+ctc": ("st", "few/st", "text.en", 150, 3e-3, {"data": {"char_vocab": None}, "head": {"st_ctc_weight": 0.3}}),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(OVERFIT))
def test_each_task_overfits_a_few_utterances(ft_corpus, tmp_path, name):
    task, data, table, steps, lr, extra = OVERFIT[name]
    cfg = tiny_config(ft_corpus, task, data, steps, lr, **extra)
    torch.manual_seed(0)
    final = finetune(cfg, tmp_path / "exp", progress_bar=False)
    assert final.is_file()
    hyp = decode(tmp_path / "exp", ft_corpus / data, tmp_path / "decode", progress=False)
    assert read_table(hyp, allow_empty_value=True) == references(ft_corpus / data, table)
    # dev (here the training set) is scored with the task's metric by greedy decoding: perfect at the end
    # (BLEU is 0 on these one- and two-word references whatever the output: only its presence is checked)
    last = json.loads((tmp_path / "exp" / "dev.jsonl").read_text().splitlines()[-1])
    metric, perfect = {"st": ("bleu", None), "asr": ("cer", 0.0)}.get(task, ("acc", 1.0))
    assert metric in last and (perfect is None or last[metric] == pytest.approx(perfect)), last
    assert (tmp_path / "exp" / "curves.png").read_bytes()[:4] == b"\x89PNG"
    if name == "st+ctc":
        assert "st_ctc" in json.loads((tmp_path / "exp" / "train.jsonl").read_text().splitlines()[-1])
        with pytest.raises(ConfigError, match="takes no text input"):
            decode(tmp_path / "exp", ft_corpus / "few/mt", tmp_path / "decode_mt", text_input=True, progress=False)
    if name == "st+mt":  # the MT half of joint training: the same model translates the source text
        hyp = decode(tmp_path / "exp", ft_corpus / "few/mt", tmp_path / "decode_mt", text_input=True, progress=False)
        assert read_table(hyp) == references(ft_corpus / "few/mt", "text.en")


# --------------------------------------------------------------------------- --init versus from scratch
def encoder_tensors(state: dict) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.startswith("encoder.") and not k.startswith("encoder.text_frontend")}


@pytest.mark.slow
def test_init_loads_the_pretrained_encoder_and_no_init_trains_from_scratch(ft_corpus, tmp_path):
    from mslam.bin.finetune import main as finetune_main
    from mslam.tasks.pretrain import load_pretrain_config
    from mslam.train.trainer import pretrain
    pre = tmp_path / "pretrain"
    pretrain(load_pretrain_config("tiny", [
        f"data.root={ft_corpus}", "data.vocab=chars.txt", "model.vocab_size=512",
        "data.speech={dirs: [speech/train], batch_sequences: 4}", "data.num_workers=0", "trainer.max_steps=2",
        "trainer.save_every=2", "trainer.tensorboard=false", "trainer.device=cpu"]), pre, progress_bar=False)
    pretrained = torch.load(pre / "checkpoints/step-00000002/state.pt", weights_only=False)["model"]

    config = tmp_path / "intent.yaml"
    import yaml
    from mslam.config import config_to_dict
    yaml.safe_dump(config_to_dict(tiny_config(ft_corpus, "intent", "few/intent", 4)), config.open("w"))
    frozen = ["--set", "optim.freeze_encoder_steps=4"]
    assert finetune_main(["--config", str(config), "--init", str(pre), "--output-dir", str(tmp_path / "init"),
                          "--no-progress", *frozen]) == 0
    assert finetune_main(["--config", str(config), "--output-dir", str(tmp_path / "scratch"),
                          "--no-progress", *frozen]) == 0
    init = torch.load(tmp_path / "init/final.pt", weights_only=False)
    scratch = torch.load(tmp_path / "scratch/final.pt", weights_only=False)
    want = encoder_tensors(pretrained)
    got = encoder_tensors(init["model"])
    assert set(got) == set(want)
    for k in want:  # frozen for the whole run: exactly the pre-trained weights
        assert torch.equal(got[k], want[k]), k
    assert init["config"]["model"] == pretrained_config(pre)["model"]
    assert any(not torch.equal(encoder_tensors(scratch["model"])[k], want[k]) for k in want)
    head = "decoder.out.weight"  # the classifier trained in both runs
    assert not torch.equal(init["model"][head], scratch["model"][head])


def test_fresh_top_layers_keep_their_initialisation_and_the_rest_load():
    from mslam.tasks.finetune import load_encoder_weights
    cfg = load_finetune_config({"task": "langid", "model": TINY_MODEL, "head": TINY_HEAD, "fresh_top_layers": 1})
    model = build_finetune_model(cfg, 3)
    fresh = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    checkpoint = {f"encoder.{k}": v + 1.0 for k, v in fresh.items() if v.is_floating_point()}
    load_encoder_weights(model, checkpoint, "ckpt", cfg.fresh_top_layers)
    stacks = [f"{s}.layers.{i}." for s in ("speech_layers", "shared_layers")
              for i in range(len(getattr(model.encoder, s).layers))]
    top = "shared_layers.layers.0."  # the top of the tiny encoder's two layers
    assert stacks[-1] == top
    for k, v in model.encoder.state_dict().items():
        if f"encoder.{k}" in checkpoint:
            assert torch.equal(v, fresh[k] if k.startswith(top) else fresh[k] + 1.0), k
    with pytest.raises(ValueError, match="has 2 layers"):
        load_encoder_weights(model, checkpoint, "ckpt", len(stacks) + 1)


def test_inherit_ctc_copies_the_pretraining_ctc_rows_by_symbol_and_leaves_the_rest_fresh(tmp_path):
    from mslam.config import config_to_dict
    from mslam.data.tokenizer import SPECIALS, CharTokenizer
    from mslam.tasks.finetune import inherit_ctc_head
    CharTokenizer([*SPECIALS, "a", "b", "c"]).save(tmp_path / "chars.txt")   # the pre-training vocabulary
    targets = CharTokenizer([*SPECIALS, "c", "x", "a"])                       # ASR targets: "x" is new
    cfg = load_finetune_config({"task": "asr", "init": "run", "model": TINY_MODEL,
                                "head": {**TINY_HEAD, "asr_decoder": "ctc", "inherit_ctc": True},
                                "data": {"root": str(tmp_path), "char_vocab": "chars.txt", "train": ["t"]}})
    model = build_finetune_model(cfg, len(targets))
    fresh = model.decoder.weight.detach().clone(), model.decoder.bias.detach().clone()
    rows = 512
    state = {"ctc_head.weight": torch.arange(rows, dtype=torch.float)[:, None].expand(rows, 64).clone(),
             "ctc_head.bias": -torch.arange(rows, dtype=torch.float)}
    inherit_ctc_head(model, state, cfg, targets)
    pretrain_row = {i: i for i in range(len(SPECIALS))} | {len(SPECIALS): len(SPECIALS) + 2,  # c
                                                             len(SPECIALS) + 2: len(SPECIALS)}  # a
    for own in range(len(targets)):
        if own in pretrain_row:
            assert torch.equal(model.decoder.weight[own], state["ctc_head.weight"][pretrain_row[own]]), own
            assert model.decoder.bias[own] == state["ctc_head.bias"][pretrain_row[own]], own
        else:  # "x": never seen in pre-training
            assert torch.equal(model.decoder.weight[own], fresh[0][own]) and model.decoder.bias[own] == fresh[1][own]
    model = build_finetune_model(cfg, len(targets))
    fresh = model.decoder.weight.detach().clone()
    inherit_ctc_head(model, {}, cfg, targets)  # an encoder pre-trained without CTC: nothing to inherit
    assert torch.equal(model.decoder.weight, fresh)
    langid = load_finetune_config({**config_to_dict(cfg), "task": "langid"})
    with pytest.raises(ConfigError, match="only for asr"):
        inherit_ctc_head(build_finetune_model(langid, 3), state, langid, targets)


def test_encoder_dropout_replaces_the_pretraining_runs(ft_corpus, tmp_path):
    """A pre-training run without dropout would otherwise fine-tune without any (--init takes its model)."""
    from mslam.tasks.finetune import prepare
    init = tmp_path / "init.pt"
    torch.save({"model": {}, "config": {"model": TINY_MODEL}}, init)
    assert TINY_MODEL["encoder"]["dropout"] == 0.0
    for encoder_dropout, want in ((None, 0.0), (0.15, 0.15)):
        cfg = tiny_config(ft_corpus, "asr", "few/asr", 2, init=str(init),
                          regularization={"encoder_dropout": encoder_dropout})
        cfg, _, _ = prepare(cfg, tmp_path / f"out{encoder_dropout}")
        assert cfg.model.encoder.dropout == want
        assert {r for _, _, r in dropout_rates(build_finetune_model(cfg, 10).encoder)} == ({want} if want else set())


def pretrained_config(run: Path) -> dict:
    import yaml
    return yaml.safe_load((run / "config.yaml").read_text())


# --------------------------------------------------------------------------- resume, early stopping
@pytest.mark.slow
def test_resume_continues_exactly(ft_corpus, tmp_path):
    cfg = lambda: tiny_config(ft_corpus, "intent", "few/intent", 8, trainer={  # noqa: E731
        "max_steps": 8, "eval_every": 4, "save_every": 4, "log_every": 1, "tensorboard": False, "device": "cpu",
        "average_best": 1}, spec_augment={"freq_masks": 1, "time_masks": 1},
        data={"crop": {"prob": 0.5, "min_frames": 20, "max_frames": 40}})
    finetune(cfg(), tmp_path / "straight", progress_bar=False)
    half = cfg()
    half.trainer.max_steps = 4
    finetune(half, tmp_path / "resumed", progress_bar=False)
    finetune(cfg(), tmp_path / "resumed", resume=True, progress_bar=False)
    a = torch.load(tmp_path / "straight/checkpoints/step-00000008/state.pt", weights_only=False)
    b = torch.load(tmp_path / "resumed/checkpoints/step-00000008/state.pt", weights_only=False)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["task"]["dev_history"] == b["task"]["dev_history"]
    assert (tmp_path / "straight/dev.jsonl").read_text() == (tmp_path / "resumed/dev.jsonl").read_text()


def test_random_excerpts_are_drawn_per_step_within_their_bounds(ft_corpus):
    from mslam.data.finetune_data import BatchConfig, CropConfig, FinetuneBatches, speech_examples
    examples = speech_examples(ft_corpus / "langid/train", "utt2lang", lambda v, u: 0)
    crop = CropConfig(prob=0.5, min_frames=20, max_frames=40)
    data = FinetuneBatches(examples, BatchConfig(batch_frames=4000), seed=0, crop=crop)
    whole = FinetuneBatches(examples, BatchConfig(batch_frames=4000), seed=0)
    cut = kept = 0
    for step in range(1, 2 * len(data.batches) + 1):
        cropped, full = data[step].micro_batches[0], whole[step].micro_batches[0]
        assert torch.equal(cropped.feats, data[step].micro_batches[0].feats)  # a function of the step
        for n, m in zip(cropped.feat_lens.tolist(), full.feat_lens.tolist()):
            if n == m:
                kept += 1
            else:
                cut += 1
                assert 20 <= n <= 40, (n, m)
    assert cut > 0.3 * (cut + kept) and kept > 0.3 * (cut + kept), (cut, kept)
    # an excerpt is a contiguous window of the utterance's features, anywhere in it
    rng = np.random.default_rng(0)
    starts = {crop.window(100, rng)[0] for _ in range(200)}
    assert min(starts) == 0 and max(starts) >= 55
    assert CropConfig().window(100, rng) == (0, 100)  # prob 0: whole utterances
    with pytest.raises(ValueError):
        CropConfig(prob=0.5, min_frames=50, max_frames=40)


def test_early_stopping_keeps_the_best_checkpoint(ft_corpus, tmp_path):
    cfg = tiny_config(ft_corpus, "intent", "few/intent", 40, lr=1e-12, trainer={
        "max_steps": 40, "eval_every": 2, "save_every": 100, "keep_checkpoints": 1, "keep_best": 1,
        "early_stop_patience": 2, "tensorboard": False, "device": "cpu", "average_best": 1})
    finetune(cfg, tmp_path / "exp", progress_bar=False)
    # With no learning every evaluation ties; the first is the best, and two more end the run.
    steps = sorted(p.name for p in (tmp_path / "exp/checkpoints").iterdir())
    assert steps == ["step-00000002", "step-00000006"]
    assert torch.load(tmp_path / "exp/final.pt", weights_only=False)["steps"] == [2]
    finetune(cfg, tmp_path / "exp", resume=True, progress_bar=False)  # a finished run stays finished
    assert sorted(p.name for p in (tmp_path / "exp/checkpoints").iterdir()) == steps


# --------------------------------------------------------------------------- optimiser groups
def test_layerwise_learning_rates_and_separate_warmups(ft_corpus):
    cfg = tiny_config(ft_corpus, "st", "few/st", 10, optim={"encoder_lr": 1e-3, "encoder_warmup": 10,
                                                            "head_lr": 4e-3, "head_warmup": 2, "layer_lr_decay": 0.5})
    model = build_finetune_model(cfg, 30)
    optimizer, scheduler = build_finetune_optimizer(model, cfg.optim)
    groups = optimizer.param_groups
    head = groups[-1]
    assert {id(p) for p in head["params"]} == {id(p) for p in model.decoder.parameters()}
    top = model.encoder.shared_layers.layers[-1]
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    # step 1: warm-up fractions 1/10 (encoder) and 1/2 (head)
    assert lr_of[id(next(top.parameters()))] == pytest.approx(1e-3 / 10)
    assert lr_of[id(next(model.encoder.speech_layers.layers[0].parameters()))] == pytest.approx(1e-3 * 0.5 / 10)
    assert lr_of[id(next(model.encoder.speech_frontend.parameters()))] == pytest.approx(1e-3 * 0.25 / 10)
    assert head["lr"] == pytest.approx(4e-3 / 2)
    all_params = {id(p) for p in model.parameters()}
    assert set(lr_of) == all_params and sum(len(g["params"]) for g in groups) == len(all_params)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    assert groups[-1]["lr"] == pytest.approx(4e-3 * (2 / 4) ** 0.5)  # step 4: past the head's warm-up


def test_a_data_dir_without_the_task_targets_is_named(ft_corpus, tmp_path, capsys):
    from mslam.bin.finetune import main as finetune_main
    code = finetune_main(["--task", "intent", "--output-dir", str(tmp_path / "x"), "--no-progress", "--set",
                          f"data.root={ft_corpus}", "data.train=[asr/train]"])
    assert code == 1
    err = capsys.readouterr().err
    assert "utt2intent" in err and "asr/train" in err


def test_a_run_saved_while_the_encoder_is_frozen_resumes(ft_corpus, tmp_path):
    # Frozen parameters have no optimiser state yet; resuming must not demand it.
    cfg = tiny_config(ft_corpus, "st", "few/st", 4, optim={"freeze_encoder_steps": 4})
    finetune(cfg, tmp_path / "exp", progress_bar=False)
    cfg.trainer.max_steps = 6
    finetune(cfg, tmp_path / "exp", resume=True, progress_bar=False)
    assert (tmp_path / "exp/checkpoints/step-00000006").is_dir()


def test_model_from_takes_the_pretraining_model_and_model_overrides_apply_on_top():
    from mslam.tasks.pretrain import load_pretrain_config
    mini = load_pretrain_config("mini").model
    cfg = load_finetune_config("langid", ["model_from=mini"])
    assert cfg.model == mini
    cfg = load_finetune_config("langid", ["model_from=mini", "model.frontend.subsampling=2",
                                          "model.encoder.dropout=0.0"])
    assert cfg.model.frontend.subsampling == 2 and cfg.model.encoder.dropout == 0.0
    assert cfg.model.encoder.d_model == mini.encoder.d_model and cfg.model.vocab_size == mini.vocab_size
    assert build_finetune_model(cfg, 14).encoder.speech_frontend.subsampling == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without GPUs")
def test_asking_for_a_gpu_the_machine_lacks_names_the_recipe_flag(tmp_path):
    from mslam.train.distributed import init_distributed
    with pytest.raises(ConfigError, match=r"trainer.device=cpu or auto \(in a recipe: --ngpu auto"):
        init_distributed("cuda")
    with pytest.raises(ConfigError, match=r"--device cpu \(in a recipe: --ngpu auto"):
        decode(tmp_path, tmp_path, tmp_path / "out", device="cuda")
