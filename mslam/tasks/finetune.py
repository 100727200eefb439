"""Fine-tuning: a (pre-trained) encoder plus a task head, trained on labelled data with the
pre-training loop (same checkpoints, logs, resume), evaluated on dev, and the best checkpoints
averaged into OUTPUT_DIR/final.pt.

    OUTPUT_DIR/config.yaml        the resolved config (with --init: the encoder's config from the checkpoint)
    OUTPUT_DIR/tokens/            target vocabulary (spm.model / chars.txt / labels.txt) and, for text
                                  input, the encoder's character vocabulary (encoder_chars.txt)
    OUTPUT_DIR/checkpoints/       step-N/ (the newest trainer.keep_checkpoints + the best keep_best on dev)
    OUTPUT_DIR/train.jsonl, dev.jsonl, tensorboard/
    OUTPUT_DIR/final.pt           {"model", "steps", "config"}: the mean of the best average_best checkpoints
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import torch
import yaml

from mslam.config import ConfigError, apply_overrides, config_to_dict, load_config, load_with_overrides
from mslam.data.features import CMVNStats
from mslam.data.finetune_data import (SOURCE_TABLE, TARGET_TABLES, BatchConfig, CropConfig, Example,
                                      FinetuneBatches, collate, drop_by_length, fixed_batches, read_target_table,
                                      speech_examples, text_examples)
from mslam.data.kaldi import DataDirError, atomic_write_text
from mslam.data.tokenizer import CharTokenizer, SubwordTokenizer
from mslam.model.encoder import ModelConfig
from mslam.model.finetune import DecodeConfig, FinetuneModel, HeadConfig, RegularizationConfig, SpecAugmentConfig
from mslam.scoring.metrics import bleu, error_rates
from mslam.scoring.plots import training_curves_png
from mslam.train import distributed as D
from mslam.train.checkpoint import (CheckpointError, average_checkpoints, checkpoint_step, list_checkpoints,
                                    load_model_state)
from mslam.train.config import TrainerConfig
from mslam.train.progress import TrainReport
from mslam.train.schedule import lr_factor
from mslam.train.trainer import Trainer, autocast

log = logging.getLogger("mslam.finetune")
CONF_DIR = Path(__file__).resolve().parent.parent / "conf" / "finetune"
CLASS_TASKS = ("intent", "langid")
DEV_METRICS = {"st": "bleu", "asr": "cer", "intent": "acc", "langid": "acc"}  # dev_metric auto


# ----------------------------------------------------------------------------- config
@dataclass
class FinetuneDataConfig:
    root: str = "."                  # relative paths below are under this dir
    train: list[str] = field(default_factory=list)   # Kaldi data dirs
    dev: list[str] = field(default_factory=list)
    mt_train: list[str] = field(default_factory=list)  # joint ST+MT: text dirs (source `text`, target `text.en`)
    target: Optional[str] = None     # the table holding the targets; default: st text.en, asr text,
                                     # intent utt2intent, langid utt2lang
    char_vocab: Optional[str] = None  # the encoder's characters, for text input (MT, zero-shot); default:
                                      # the pre-training run's data.vocab
    spm_vocab_size: int = 1000       # ST targets: SentencePiece pieces (unknown in the paper)
    cmvn: Optional[str] = None       # global mean/variance stats; use the pre-training run's
    batch: BatchConfig = field(default_factory=BatchConfig)
    crop: CropConfig = field(default_factory=CropConfig)   # training on random excerpts (LangID)
    num_workers: int = 1
    prefetch_steps: int = 4

    def path(self, p: str) -> Path:
        return Path(self.root) / p


@dataclass
class FinetuneOptimConfig:
    encoder_lr: float = 3e-4         # paper (ASR): 3e-4 with 5k warm-up for the encoder
    encoder_warmup: int = 5000
    head_lr: float = 1e-3            # paper (ASR): 1e-3 with 1.5k warm-up for the decoder
    head_warmup: int = 1500
    layer_lr_decay: float = 1.0      # encoder layer k from the top learns at encoder_lr * decay^k
    freeze_encoder_steps: int = 0    # the encoder is not trained in the first K steps
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-9
    weight_decay: float = 0.0
    clip_grad_norm: float = 5.0

    def __post_init__(self):
        if min(self.encoder_warmup, self.head_warmup) < 1 or not 0 < self.layer_lr_decay <= 1:
            raise ValueError("need warm-ups >= 1 and 0 < layer_lr_decay <= 1")


@dataclass
class FinetuneTrainerConfig(TrainerConfig):
    max_steps: int = 20000
    save_every: int = 1000
    eval_every: int = 1000           # steps between dev evaluations (each also saves a checkpoint)
    dev_metric: Literal["auto", "loss", "acc", "cer", "bleu"] = "auto"  # auto: the task's own metric (accuracy
                                     # for intent/langid, CER for asr, BLEU for st), from greedy decoding
    early_stop_patience: int = 0     # stop after this many evaluations without a better dev score (0: never)
    keep_best: int = 3               # checkpoints kept for being among the best on dev
    average_best: int = 3            # final.pt = mean of the best N checkpoints on dev (the last N without dev)


@dataclass
class FinetuneConfig:
    task: Literal["st", "asr", "intent", "langid"] = "asr"
    init: Optional[str] = None       # a pre-training run dir, checkpoint dir or .pt; null: from scratch
    model: ModelConfig = field(default_factory=ModelConfig)   # from scratch only; --init takes the checkpoint's
    model_from: Optional[str] = None  # from scratch: the model section of this pre-training config (name or path)
    # With --init: the top K encoder layers keep a fresh initialisation instead of the checkpoint's. The
    # top layers of a masked-prediction encoder specialise in its targets; measured at mini scale (LangID,
    # 100 labels per language): 79% with the top 2 layers fresh against 70% with all layers pre-trained.
    fresh_top_layers: int = 0
    head: HeadConfig = field(default_factory=HeadConfig)
    spec_augment: Optional[SpecAugmentConfig] = field(default_factory=SpecAugmentConfig)
    regularization: RegularizationConfig = field(default_factory=RegularizationConfig)
    data: FinetuneDataConfig = field(default_factory=FinetuneDataConfig)
    optim: FinetuneOptimConfig = field(default_factory=FinetuneOptimConfig)
    trainer: FinetuneTrainerConfig = field(default_factory=FinetuneTrainerConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)


def load_finetune_config(source: str | os.PathLike | dict, overrides: list[str] = ()) -> FinetuneConfig:
    """A YAML path / shipped name (mslam/conf/finetune) / dict, with `key.path=value` overrides.
    From scratch with `model_from`, the model section is that pre-training config's, and `model.*`
    overrides apply on top of it (with --init, the checkpoint's model section replaces both)."""
    cfg = load_with_overrides(source, FinetuneConfig, CONF_DIR, overrides)
    if cfg.model_from and not cfg.init:  # the same encoder as the pre-trained ones, freshly initialised
        from mslam.tasks.pretrain import load_pretrain_config
        model = config_to_dict(load_pretrain_config(cfg.model_from).model)
        model_overrides = [o[len("model."):] for o in overrides if o.startswith("model.")]
        cfg.model = load_config(apply_overrides(model, model_overrides), ModelConfig)
    return cfg


# ----------------------------------------------------------------------------- pieces
def load_encoder_weights(model: FinetuneModel, state: dict, source: str, fresh_top_layers: int = 0) -> None:
    encoder_state = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
    if not encoder_state:
        raise CheckpointError(f"--init {source}: the checkpoint has no encoder parameters")
    layers = [f"{stack}.layers.{i}." for stack in ("speech_layers", "shared_layers")
              for i in range(len(getattr(model.encoder, stack).layers))]  # bottom to top
    if not 0 <= fresh_top_layers <= len(layers):
        raise ValueError(f"fresh_top_layers {fresh_top_layers}: the encoder has {len(layers)} layers")
    fresh = tuple(layers[len(layers) - fresh_top_layers:])
    encoder_state = {k: v for k, v in encoder_state.items() if not k.startswith(fresh)}
    own = model.encoder.state_dict()
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in encoder_state.items()
             if k in own and v.shape != own[k].shape]
    if wrong:
        raise CheckpointError(f"--init {source}: shapes differ from the model built from its config: "
                              + "; ".join(wrong[:5]))
    missing, unexpected = model.encoder.load_state_dict(encoder_state, strict=False)
    unexpected = [k for k in unexpected if not k.startswith("text_frontend.")]  # a speech-only task
    if unexpected:
        raise CheckpointError(f"--init {source}: unknown encoder parameters {unexpected[:5]}")
    if missing:
        log.info("--init: %d encoder tensors not in the checkpoint start fresh (%s)", len(missing),
                 ", ".join(sorted({k.split('.')[0] for k in missing})))


def inherit_ctc_head(model: FinetuneModel, state: dict, cfg: FinetuneConfig, targets: CharTokenizer) -> None:
    """head.inherit_ctc: copy the pre-training CTC head's rows into the ASR output layer, matched by symbol
    (the encoder's character vocabulary, data.char_vocab, against the ASR targets). An --init without a
    CTC head (w2v-bert, mslam-tlm) leaves the output layer fresh."""
    if cfg.task != "asr" or cfg.head.asr_decoder != "ctc":
        raise ConfigError(f"head.inherit_ctc: only for asr with head.asr_decoder=ctc, not {cfg.task}")
    if "ctc_head.weight" not in state:  # one config for every encoder: only mslam-ctc runs have the head
        log.info("head.inherit_ctc: --init %s has no CTC head; the output layer starts fresh", cfg.init)
        return
    if cfg.data.char_vocab is None:
        raise ConfigError("head.inherit_ctc: give data.char_vocab, the pre-training run's character vocabulary")
    chars = CharTokenizer.load(cfg.data.path(cfg.data.char_vocab))  # an absolute path stays as it is
    if len(chars) > state["ctc_head.weight"].shape[0]:
        raise ConfigError(f"head.inherit_ctc: data.char_vocab has {len(chars)} symbols but the CTC head of "
                          f"--init {cfg.init} {state['ctc_head.weight'].shape[0]}; use the run's vocabulary")
    pairs = [(i, chars.index[s]) for i, s in enumerate(targets.symbols) if s in chars.index]
    own, theirs = (torch.tensor(ix) for ix in zip(*pairs))
    with torch.no_grad():
        model.decoder.weight[own] = state["ctc_head.weight"][theirs]
        model.decoder.bias[own] = state["ctc_head.bias"][theirs]
    log.info("head.inherit_ctc: %d of %d output rows from the pre-training CTC head", len(pairs), len(targets))


class Targets:
    """The task's target vocabulary: built from the training data once, kept in OUTPUT_DIR/tokens."""

    def __init__(self, task: str, tokens_dir: Path):
        self.task, self.dir = task, tokens_dir
        self.path = tokens_dir / {"st": "spm.model", "asr": "chars.txt"}.get(task, "labels.txt")

    def build(self, texts: list[str], cfg: FinetuneDataConfig) -> None:
        if self.path.is_file():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.task == "st":
            tmp = SubwordTokenizer.train(texts, self.dir / ".spm-tmp", vocab_size=cfg.spm_vocab_size)
            os.replace(tmp.model_path, self.path)
            (self.dir / ".spm-tmp.vocab").unlink(missing_ok=True)
        elif self.task == "asr":
            build_grapheme_vocab(texts, self.path)
        else:
            atomic_write_text(self.path, "".join(f"{c}\n" for c in sorted(set(texts))))

    def load(self):
        if self.task == "st":
            self.tok = SubwordTokenizer(self.path)
        elif self.task == "asr":
            self.tok = CharTokenizer.load(self.path)
        else:
            self.labels = self.path.read_text(encoding="utf-8").split()
            self.index = {c: i for i, c in enumerate(self.labels)}
        return self

    def __len__(self) -> int:
        return len(self.labels) if self.task in CLASS_TASKS else len(self.tok)

    def encode(self, value: str, utt: str):
        if self.task in CLASS_TASKS:
            if value not in self.index:
                raise DataDirError(f"utterance '{utt}': class '{value}' was not seen in training "
                                   f"(classes: {' '.join(self.labels)})")
            return self.index[value]
        return self.tok.encode(value)

    def decode(self, hyp) -> str:
        return self.labels[hyp] if self.task in CLASS_TASKS else self.tok.decode(hyp)


def target_table(cfg: FinetuneConfig) -> str:
    return cfg.data.target or TARGET_TABLES[cfg.task]


def read_targets(cfg: FinetuneConfig) -> list[str]:
    """The raw targets of every training example (for building the vocabulary)."""
    table = target_table(cfg)
    texts = []
    for d in cfg.data.train + (cfg.data.mt_train if cfg.task == "st" else []):
        texts += read_target_table(cfg.data.path(d), table).values()
    return texts


def transcript_chars(cfg: FinetuneConfig, tokens: Path) -> CharTokenizer | None:
    """ST with head.st_ctc_weight: the characters of the training set's source transcripts (`text`),
    the targets of the auxiliary CTC loss; built once, kept in OUTPUT_DIR/tokens."""
    if cfg.task != "st" or cfg.head.st_ctc_weight <= 0:
        return None
    path = tokens / "transcript_chars.txt"
    if not path.is_file():
        tokens.mkdir(parents=True, exist_ok=True)
        build_grapheme_vocab([t for d in cfg.data.train
                              for t in read_target_table(cfg.data.path(d), SOURCE_TABLE).values()], path)
    return CharTokenizer.load(path)


def build_grapheme_vocab(texts: list[str], path: Path) -> None:
    """Every character of the texts, all languages merged (ASR targets; ST's transcript CTC)."""
    CharTokenizer.build({"all": texts}, max_size=100000, coverage=1.0).save(path)


def build_finetune_model(cfg: FinetuneConfig, num_targets: int, transcripts: CharTokenizer | None = None
                         ) -> FinetuneModel:
    return FinetuneModel(cfg.task, cfg.model, cfg.head, num_targets, spec_augment=cfg.spec_augment,
                         freeze_encoder_steps=cfg.optim.freeze_encoder_steps, regularization=cfg.regularization,
                         transcript_vocab=len(transcripts) if transcripts else 0)


def build_finetune_optimizer(model: torch.nn.Module, cfg: FinetuneOptimConfig):
    """Adam with two schedules (warm-up, then inverse square root): the encoder's (optionally
    decayed layer by layer from the top) and the head's."""
    encoder_groups, head = D.unwrap(model).parameter_groups()
    groups, lambdas = [], []
    for depth, params in encoder_groups:
        groups.append({"params": params, "lr": cfg.encoder_lr * cfg.layer_lr_decay ** depth})
        lambdas.append(lambda i: lr_factor(i + 1, cfg.encoder_warmup))
    groups.append({"params": head, "lr": cfg.head_lr})
    lambdas.append(lambda i: lr_factor(i + 1, cfg.head_warmup))
    optimizer = torch.optim.Adam(groups, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, weight_decay=cfg.weight_decay)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)


def prepare(cfg: FinetuneConfig, out: Path) -> tuple[FinetuneConfig, Targets, dict | None]:
    """Resolve --init (the encoder's config comes from its checkpoint), copy the encoder's character
    vocabulary and build the target vocabulary under OUTPUT_DIR/tokens. Returns the init weights."""
    init_state = None
    if cfg.init:
        init_state, init_config, _ = load_model_state(cfg.init)
        cfg.model = load_config(init_config["model"], ModelConfig)
        if cfg.data.char_vocab is None and (cfg.task == "st" or cfg.head.inherit_ctc):
            data = init_config.get("data", {})
            candidate = Path(data.get("root", ".")) / data.get("vocab", "chars.txt")
            cfg.data.char_vocab = str(candidate.resolve()) if candidate.is_file() else None
    if cfg.regularization.encoder_dropout is not None:
        cfg.model.encoder.dropout = cfg.regularization.encoder_dropout
    tokens = out / "tokens"
    if cfg.task == "st" and cfg.data.char_vocab is None:
        if cfg.data.mt_train:
            raise ConfigError("data.char_vocab: joint ST+MT needs the encoder's character vocabulary for its text "
                              "input; none was given and the --init run's data.vocab was not found")
        log.info("no data.char_vocab: this speech-only ST model will not take text input (zero-shot MT)")
    elif cfg.task == "st":
        src = cfg.data.path(cfg.data.char_vocab)  # an absolute path stays as it is
        if not src.is_file():
            raise ConfigError(f"data.char_vocab: {src} not found")
        chars = CharTokenizer.load(src)
        if not cfg.init:  # a fresh text embedding: exactly the vocabulary's size
            cfg.model.vocab_size = len(chars)
        if len(chars) > cfg.model.vocab_size:
            raise ConfigError(f"data.char_vocab: {src} has {len(chars)} symbols but the encoder's embedding has "
                              f"{cfg.model.vocab_size}; use the pre-training run's vocabulary")
        tokens.mkdir(parents=True, exist_ok=True)
        if not (tokens / "encoder_chars.txt").is_file():
            chars.save(tokens / "encoder_chars.txt")
    if not cfg.data.train:
        raise ConfigError("data.train: no training data dirs")
    targets = Targets(cfg.task, tokens)
    targets.build(read_targets(cfg), cfg.data)
    transcript_chars(cfg, tokens)
    return cfg, targets.load(), init_state


def load_examples(cfg: FinetuneConfig, targets: Targets, dirs: list[str], cache: Path,
                  transcripts: CharTokenizer | None = None) -> list[Example]:
    examples = []
    encode_transcript = (lambda s, u: transcripts.encode(s, utt=u)) if transcripts else None
    for d in dirs:
        examples += speech_examples(cfg.data.path(d), target_table(cfg), targets.encode, cache_dir=cache,
                                    encode_transcript=encode_transcript)
    return drop_by_length(examples, cfg.data.batch, ", ".join(dirs))


def encoder_chars(out: Path) -> CharTokenizer:
    path = out / "tokens" / "encoder_chars.txt"
    if not path.is_file():
        raise ConfigError(f"{out}: trained without the encoder's character vocabulary (data.char_vocab), so it "
                          "takes no text input; fine-tune again with data.char_vocab=... for text translation")
    return CharTokenizer.load(path)


# ----------------------------------------------------------------------------- training
class FinetuneTrainer(Trainer):
    def __init__(self, cfg: FinetuneConfig, out: Path, env: D.DistEnv, resume: bool):
        self.find_unused_parameters = cfg.optim.freeze_encoder_steps > 0
        self.dev_history: list[tuple[int, float]] = []   # (step, score: higher is better)
        self.dev_batches = None
        self.dev_refs: dict[str, str] = {}  # asr / st: the dev references as text, for CER / BLEU
        self.stopped_early = False
        super().__init__(cfg, out, env, resume)

    @property
    def name(self) -> str:
        return f"finetune {self.cfg.task}"

    def setup(self):
        cfg, out = self.cfg, self.out
        if self.env.is_main:
            out.mkdir(parents=True, exist_ok=True)
            self.cfg, self.targets, init_state = prepare(cfg, out)
        D.barrier(self.env)
        if not self.env.is_main:
            self.cfg, self.targets, init_state = prepare(cfg, out)
        cfg = self.cfg
        transcripts = transcript_chars(cfg, out / "tokens")  # every process: built above by the main one
        model = build_finetune_model(cfg, len(self.targets), transcripts)
        if init_state is not None:
            load_encoder_weights(model, init_state, cfg.init, cfg.fresh_top_layers)
            if cfg.head.inherit_ctc:
                inherit_ctc_head(model, init_state, cfg, self.targets.tok)
        cache = out / "manifests"
        self.cmvn = CMVNStats.load(cfg.data.path(cfg.data.cmvn)) if cfg.data.cmvn else None
        train = load_examples(cfg, self.targets, cfg.data.train, cache, transcripts)
        mt = []
        if cfg.data.mt_train:
            if cfg.task != "st":
                raise ConfigError("data.mt_train: text input (joint ST+MT) belongs to the st task")
            chars = encoder_chars(out)
            for d in cfg.data.mt_train:
                mt += text_examples(cfg.data.path(d), target_table(cfg), self.targets.encode,
                                    lambda s, u: chars.encode(s, utt=u))
        self.dev = load_examples(cfg, self.targets, cfg.data.dev, cache, transcripts) if cfg.data.dev else []
        tc = cfg.trainer
        data = FinetuneBatches(train, cfg.data.batch, tc.seed, self.env.rank, self.env.world_size, tc.grad_accum,
                               mt, self.cmvn, cfg.data.crop if cfg.data.crop.prob > 0 else None)
        return model, data

    def build_optimizer(self, model):
        return build_finetune_optimizer(model, self.cfg.optim)

    def describe(self) -> None:
        d = self.data
        log.info("task %s: %d training utterances in %d batches per epoch%s; %d dev utterances; %d targets",
                 self.cfg.task, len(d.examples), len(d.batches),
                 f", {len(d.mt_examples)} MT sentences" if d.mt_examples else "", len(self.dev), len(self.targets))

    def data_state(self) -> dict:
        return {"seed": self.cfg.trainer.seed, "batch": config_to_dict(self.cfg.data.batch),
                "crop": config_to_dict(self.cfg.data.crop), **self.data.fingerprint()}

    # -- dev evaluation, early stopping, best checkpoints --
    def should_save(self) -> bool:
        return super().should_save() or self.evaluates_now()

    def evaluates_now(self) -> bool:
        tc = self.cfg.trainer
        return bool(self.dev) and (self.step % tc.eval_every == 0 or self.step == tc.max_steps)

    def metric(self) -> str:
        m = self.cfg.trainer.dev_metric
        return m if m != "auto" else DEV_METRICS[self.cfg.task]

    def after_step(self, report: TrainReport) -> bool:
        if not self.evaluates_now():
            return False
        result = self.evaluate()
        if self.metric() not in result:
            raise ConfigError(f"trainer.dev_metric: {self.metric()} is not measured for task {self.cfg.task} "
                              f"(measured: {', '.join(result)})")
        score = result[self.metric()] * (-1 if self.metric() in ("loss", "cer") else 1)
        self.dev_history.append((self.step, score))
        best_step = max(self.dev_history, key=lambda h: (h[1], -h[0]))[0]
        if self.env.is_main:
            record = {"step": self.step, **result, "best_step": best_step}
            report.log_dev(record)
        patience = self.cfg.trainer.early_stop_patience
        since_best = sum(1 for s, _ in self.dev_history if s > best_step)
        if patience and since_best >= patience:
            self.stopped_early = True
            report.message(f"early stop at step {self.step}: no better dev {self.metric()} in {patience} "
                           f"evaluations (best at step {best_step})")
            return True
        return False

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Teacher-forced dev loss (and accuracy), and for asr / st the CER / BLEU of greedy decoding
        (averaged over languages, as the test scores are). Under DDP each process evaluates its share of
        the fixed dev batches (`dev_share`) and the sums and hypotheses are reduced, so every process gets
        the numbers one process gets."""
        model = D.unwrap(self.model)
        if self.dev_batches is None:
            groups = fixed_batches(self.dev, self.cfg.data.batch)
            self.dev_batches = [(collate(b, cmvn=self.cmvn), b) for b in groups]
            if self.cfg.task in ("asr", "st"):
                self.dev_refs = {e.id: self.targets.decode(e.target) for e in self.dev}
        model.eval()
        totals = {"loss": 0.0, "acc": 0.0}
        hyps, langs = {}, {}
        n = 0
        greedy = dataclasses.replace(self.cfg.decode, method="greedy")
        for batch, examples in self.dev_share():
            batch = batch.to(self.env.device)
            with autocast(self.env.device, self.cfg.trainer.precision):
                out = model(batch)
                decoded = model.decode(batch, greedy) if self.cfg.task in ("asr", "st") else []
            size = len(batch.feat_lens)
            totals["loss"] += float(out["loss"]) * size
            totals["acc"] += float(out.get(f"{self.cfg.task}_acc", math.nan)) * size
            n += size
            for e, hyp in zip(examples, decoded):
                hyps[e.id], langs[e.id] = self.targets.decode(hyp), e.lang
        model.train()
        sums = torch.tensor([totals["loss"], totals["acc"], n], dtype=torch.float64, device=self.env.device)
        loss, acc, n = D.all_reduce_sum(sums, self.env).tolist()
        result = {"loss": loss / n, "acc": acc / n}
        if self.cfg.task in ("asr", "st"):
            for part_hyps, part_langs in D.all_gather_objects((hyps, langs), self.env):
                hyps.update(part_hyps)
                langs.update(part_langs)
        if math.isnan(result["acc"]):
            del result["acc"]
        if self.cfg.task == "asr":
            result["cer"] = error_rates(self.dev_refs, hyps, langs)["average"]["cer"]
        elif self.cfg.task == "st":
            result["bleu"] = bleu(self.dev_refs, hyps, langs, groups={}, baselines=False)["groups"]["all"]
        return result

    def dev_share(self) -> list:
        """This process's dev batches: the same fixed batches for any number of processes, dealt out."""
        return D.rank_share(self.dev_batches, self.env, self.cfg.trainer.parallel)

    def ranked_steps(self) -> list[int]:
        """Evaluated steps, best dev score first (ties: the earlier step)."""
        return [s for s, _ in sorted(self.dev_history, key=lambda h: (-h[1], h[0]))]

    def protected_steps(self) -> set[int]:
        return set(self.ranked_steps()[:self.cfg.trainer.keep_best])

    def task_state(self) -> dict:
        return {"dev_history": self.dev_history, "stopped_early": self.stopped_early}

    def load_task_state(self, state: dict) -> None:
        self.dev_history = [tuple(h) for h in state.get("dev_history", [])]
        self.stopped_early = state.get("stopped_early", False)

    def run(self, progress_bar: bool = True) -> None:
        if self.stopped_early:
            log.info("this run stopped early at step %d (trainer.early_stop_patience); nothing to resume", self.step)
            return
        super().run(progress_bar)

    def write_final_model(self) -> Path:
        """final.pt: the mean of the best `average_best` checkpoints on dev (or of the last ones)."""
        n = self.cfg.trainer.average_best
        existing = {checkpoint_step(p): p for p in list_checkpoints(self.out)}
        steps = sorted([s for s in self.ranked_steps() if s in existing][:n] or sorted(existing)[-n:])
        model_state, _ = average_checkpoints([existing[s] for s in steps])
        path = self.out / "final.pt"
        tmp = path.with_name(".final.pt.tmp")
        torch.save({"model": model_state, "steps": steps, "config": config_to_dict(self.cfg)}, tmp)
        os.replace(tmp, path)
        log.info("final model: mean of the checkpoints of steps %s -> %s", steps, path)
        return path


def finetune(cfg: FinetuneConfig, output_dir: str | os.PathLike, *, resume: bool = False,
             progress_bar: bool = True) -> Path:
    env = D.init_distributed(cfg.trainer.device)
    try:
        trainer = FinetuneTrainer(cfg, Path(output_dir), env, resume)
        trainer.run(progress_bar)
        path = Path(output_dir) / "final.pt"
        if env.is_main:
            trainer.write_final_model()
            write_curves(Path(output_dir), cfg.task)
        D.barrier(env)
        return path
    finally:
        D.shutdown(env)


def write_curves(out: Path, task: str) -> Path:
    """OUTPUT_DIR/curves.png: train and dev loss, dev metric and train accuracy against the step."""
    def records(name: str) -> list[dict]:
        path = out / name
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    path = out / "curves.png"
    training_curves_png(records("train.jsonl"), records("dev.jsonl"), task, path, f"{task}: {out}")
    return path


# ----------------------------------------------------------------------------- loading for inference
@dataclass
class FinetunedModel:
    cfg: FinetuneConfig
    model: FinetuneModel
    targets: Targets
    exp_dir: Path


def load_finetuned(exp_dir: str | os.PathLike, checkpoint: str | os.PathLike | None = None,
                   device: str = "cpu") -> FinetunedModel:
    """A fine-tuned model for decoding: final.pt of the run, or the given checkpoint / .pt file."""
    exp = Path(exp_dir)
    config_path = exp / "config.yaml"
    if not config_path.is_file():
        raise ConfigError(f"{exp}: no config.yaml; not a fine-tuning output dir")
    with open(config_path, encoding="utf-8") as f:
        cfg = load_config(yaml.safe_load(f), FinetuneConfig)
    source = Path(checkpoint) if checkpoint else exp / "final.pt"
    if not source.exists():
        raise CheckpointError(f"{source}: not found (has fine-tuning finished? it writes final.pt)")
    state, _, _ = load_model_state(source)
    targets = Targets(cfg.task, exp / "tokens").load()
    model = build_finetune_model(cfg, len(targets), transcript_chars(cfg, exp / "tokens"))
    model.load_state_dict(state)
    return FinetunedModel(cfg, model.to(device).eval(), targets, exp)
