"""The pre-training loop. One process, or one per device under torchrun (DDP or FSDP2).

Every step is reproducible from its number alone: the data of step s is a pure function of
(seed, s) (mslam.data.pretrain_data), and the model's randomness (masks, dropout, Gumbel noise) is
seeded per micro-batch from (seed, s, micro-batch index). Hence exact resume from a checkpoint, and
the same losses whether a global batch is split over processes or accumulated in one.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml

from mslam.config import ConfigError, config_to_dict
from mslam.data.pretrain_data import PretrainBatches, StepBatch
from mslam.data.tokenizer import CharTokenizer
from mslam.model.conformer import ConformerStack
from mslam.tasks.pretrain import PretrainConfig, build_pretrain_model
from mslam.train import distributed as D
from mslam.train.checkpoint import (CheckpointError, latest_valid_checkpoint, list_checkpoints, load_checkpoint,
                                    restore_rng_states, rng_states, save_checkpoint)
from mslam.train.monitor import CollapseMonitor, held_out_batch
from mslam.train.progress import TrainReport
from mslam.train.schedule import build_optimizer

log = logging.getLogger("mslam.train")
# A skipped step still advances the schedule (the LR is a function of the step number); torch warns
# when that happens before the first optimiser step.
warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before `optimizer.step\(\)`")


class NonFiniteLossError(RuntimeError):
    """Too many steps in a row had a NaN/inf loss."""


def pretrain(cfg: PretrainConfig, output_dir: str | Path, *, resume: bool = False,
             progress_bar: bool = True) -> None:
    env = D.init_distributed(cfg.trainer.device)
    try:
        PretrainTrainer(cfg, Path(output_dir), env, resume).run(progress_bar)
    finally:
        D.shutdown(env)


@dataclass
class StepResult:
    """What a step leaves on the device; nothing in it has been read by the host yet."""
    skipped: torch.Tensor                # bool []: a non-finite loss or gradient norm; the update was not made
    sums: dict[str, torch.Tensor] = field(default_factory=dict)  # this process's sums over micro-batches
    grad_norm: torch.Tensor | None = None
    bad_micro: torch.Tensor | None = None   # bool [micro-batches]: which had a non-finite loss


@dataclass
class PendingStep:
    """A step whose skip flag the host reads at the next log record (not in the step: no wait)."""
    step: int
    result: StepResult
    micro_ids: list[int]
    utt_ids: list[list[str]]


class Trainer:
    """The loop, checkpoints and logs. A subclass says what is trained on what: `setup` returns the
    model and the data (a Dataset whose item `s` is the StepBatch of step s)."""
    name = "train"
    find_unused_parameters = False  # DDP: some parameters get no gradient in some steps

    def __init__(self, cfg, out: Path, env: D.DistEnv, resume: bool):
        self.cfg, self.out, self.env, tc = cfg, out, env, cfg.trainer
        checkpoint = resume_point(out, resume)
        torch.manual_seed(tc.seed)  # the same initial parameters in every process
        model, self.data = self.setup()
        model = model.to(env.device)
        for stack in model.modules():
            if isinstance(stack, ConformerStack):
                stack.checkpoint_activations = tc.activation_checkpointing
        if tc.compile and hasattr(model, "compile_losses"):
            model.compile_losses()
        self.model = D.wrap_model(model, tc.parallel, env, find_unused=self.find_unused_parameters)
        self.optimizer, self.scheduler = self.build_optimizer(self.model)
        self.scaler = torch.amp.GradScaler(env.device.type, enabled=tc.precision == "fp16")
        self.step, self.nonfinite_in_row = 0, 0
        self.pending: list[PendingStep] = []
        if checkpoint is not None:
            self.restore(checkpoint)
        if env.is_main:
            out.mkdir(parents=True, exist_ok=True)
            (out / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
            self.describe()

    # -- what a task defines --
    def setup(self) -> tuple[torch.nn.Module, torch.utils.data.Dataset]:
        raise NotImplementedError

    def build_optimizer(self, model: torch.nn.Module):
        return build_optimizer(model, self.cfg.optim)

    def describe(self) -> None:
        """Log what the run trains on (main process, once)."""

    def after_step(self, report: TrainReport) -> bool:
        """Called after every step (e.g. to evaluate); True stops the run."""
        return False

    def task_state(self) -> dict:
        """Task state beyond model and optimiser that a resumed run needs (saved in checkpoints)."""
        return {}

    def load_task_state(self, state: dict) -> None:
        pass

    def protected_steps(self) -> set[int]:
        """Checkpoints never pruned (e.g. the best on dev)."""
        return set()

    def should_save(self) -> bool:
        tc = self.cfg.trainer
        return self.step % tc.save_every == 0 or self.step == tc.max_steps

    def data_state(self) -> dict:
        """What decides the data order from here on; compared on resume."""
        return {"seed": self.cfg.trainer.seed}

    # ------------------------------------------------------------------ the loop
    def run(self, progress_bar: bool = True) -> None:
        tc, env = self.cfg.trainer, self.env
        loader = torch.utils.data.DataLoader(
            self.data, sampler=range(self.step + 1, tc.max_steps + 1), batch_size=None, collate_fn=_as_is,
            num_workers=self.cfg.data.num_workers, persistent_workers=self.cfg.data.num_workers > 0,
            prefetch_factor=self.cfg.data.prefetch_steps if self.cfg.data.num_workers > 0 else None)
        report = TrainReport(self.out, self.step, tc.max_steps, env.is_main, tc.tensorboard, progress_bar, self.name)
        window = LogWindow()
        t_ready = time.perf_counter()
        for batch in loader:
            t_got = time.perf_counter()
            lr = self.scheduler.get_last_lr()[0]
            result = self.train_step(batch)
            self.scheduler.step()
            self.step = batch.step
            window.add(result, wait=t_got - t_ready, busy=time.perf_counter() - t_got)
            self.pending.append(PendingStep(batch.step, result, batch.micro_ids, batch.utt_ids))
            if self.step % tc.log_every == 0 or self.step == tc.max_steps:
                self.count_nonfinite(report)  # the host reads the step flags here, once per record
                report.log(window.record(self.step, lr, self.scaler, env))
                window = LogWindow()
            stop = self.after_step(report)
            if self.should_save() or stop:
                self.count_nonfinite(report)
                self.save()
            report.advance()
            if stop:
                break
            t_ready = time.perf_counter()
        report.close()

    def train_step(self, batch: StepBatch) -> StepResult:
        """Forward, backward and update of one step without waiting for the device: the host never
        reads a value the step computes. A step with a non-finite loss or gradient norm makes no
        update (the fused optimiser reads the flag on the device); the host learns of it at the next
        log record (`count_nonfinite`)."""
        tc, env, model = self.cfg.trainer, self.env, self.model
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, torch.Tensor] = {}
        n = len(batch.micro_batches)
        bad_micro = []
        for k, (micro, m) in enumerate(zip(batch.micro_batches, batch.micro_ids)):
            torch.manual_seed(micro_batch_seed(tc.seed, batch.step, m))
            with D.gradient_sync(model, enabled=k == n - 1):
                micro = micro.to(env.device)
                with autocast(env.device, tc.precision):
                    out = model(micro, batch.step)
                loss = out["loss"] / n
                bad_micro.append(~torch.isfinite(loss.detach()))
                # Backward whatever the loss (every process runs the same collectives); a NaN spreads
                # to the gradient norm and the update is not made.
                self.scaler.scale(loss).backward()
            for key, v in out.items():
                sums[key] = sums.get(key, 0.0) + v.detach().float()
            for key, v in micro.sizes().items():  # frames and characters, for throughput
                sums[key] = sums.get(key, 0.0) + v
            sums["micro_batches"] = sums.get("micro_batches", 0.0) + 1.0
        bad = torch.stack(bad_micro)
        self.scaler.unscale_(self.optimizer)
        clip = self.cfg.optim.clip_grad_norm or math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        if hasattr(grad_norm, "full_tensor"):  # FSDP2: a DTensor; the flags below must be plain tensors
            grad_norm = grad_norm.full_tensor()
        # The gradients are reduced over processes, so is their norm; the loss flags are reduced here.
        skipped = (D.all_reduce_sum(bad.any().float(), env) > 0) | ~torch.isfinite(grad_norm)
        if self.scaler.is_enabled():  # fp16: the scaler finds the overflow and skips by itself
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            optimizer_step(self.optimizer, skipped)
        return StepResult(skipped, sums, grad_norm.detach(), bad)

    def count_nonfinite(self, report: TrainReport) -> None:
        """Read the skip flags of the steps since the last call (one wait for the device), say which
        were skipped and why, and stop after trainer.max_nonfinite_in_row in a row."""
        pending, self.pending = self.pending, []
        if not pending:
            return
        flags = torch.stack([p.result.skipped for p in pending]).tolist()
        for p, skipped in zip(pending, flags):
            if not skipped:
                self.nonfinite_in_row = 0
                continue
            bad = p.result.bad_micro.tolist() if p.result.bad_micro is not None else []
            for k, (m, is_bad) in enumerate(zip(p.micro_ids, bad)):
                if is_bad:
                    log.warning("step %d: non-finite loss on micro-batch %d (%s)", p.step, m,
                                ", ".join(p.utt_ids[k][:8]))
            if not any(bad):
                log.warning("step %d: non-finite gradient norm", p.step)
            self.nonfinite_in_row += 1
            report.message(f"step {p.step}: skipped (non-finite loss; {self.nonfinite_in_row} in a row)")
            if self.nonfinite_in_row >= self.cfg.trainer.max_nonfinite_in_row:
                raise NonFiniteLossError(
                    f"{self.nonfinite_in_row} steps in a row had a non-finite loss (up to step {p.step}); "
                    f"stopping (trainer.max_nonfinite_in_row). Utterances of the last step: "
                    f"{', '.join(u for ids in p.utt_ids for u in ids[:5])}")

    # ------------------------------------------------------------------ checkpoints
    def save(self) -> None:
        model_state, optim_state = D.full_state(self.model, self.optimizer)  # collective under FSDP
        if self.env.is_main:
            state = {"step": self.step, "model": model_state, "optimizer": optim_state,
                     "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                     "data": self.data_state(), "nonfinite_in_row": self.nonfinite_in_row,
                     "rng": rng_states(), "config": config_to_dict(self.cfg), "task": self.task_state()}
            path = save_checkpoint(self.out, self.step, state, self.cfg.trainer.keep_checkpoints,
                                   self.protected_steps())
            log.debug("saved %s", path)
        D.barrier(self.env)

    def restore(self, path: Path) -> None:
        state = load_checkpoint(path)
        try:
            D.load_full_state(self.model, self.optimizer, state["model"], state["optimizer"])
        except RuntimeError as e:  # another model size: torch lists the tensors that do not fit
            raise CheckpointError(f"{path} does not fit the model of this config (another size?): {e}") from None
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        restore_rng_states(state["rng"])
        self.step, self.nonfinite_in_row = state["step"], state["nonfinite_in_row"]
        self.load_task_state(state.get("task", {}))
        changed = [k for k, v in self.data_state().items() if state["data"].get(k) != v]
        if changed:
            log.warning("resuming from %s with different data settings (%s): the data order after step %d "
                        "differs from the original run's", path, ", ".join(changed), self.step)
        if self.env.is_main:
            log.info("resumed from %s (step %d)", path, self.step)

class PretrainTrainer(Trainer):
    name = "pretrain"

    def setup(self):
        cfg = self.cfg
        vocab = cfg.data.path(cfg.data.vocab)
        if not vocab.is_file():
            raise ConfigError(f"data.vocab: {vocab} not found; build it with python -m mslam.bin.build_char_vocab")
        tokenizer = CharTokenizer.load(vocab)
        cfg.model.vocab_size = vocab_size_for(cfg.model.vocab_size, tokenizer, vocab)
        model = build_pretrain_model(cfg)
        data = PretrainBatches(cfg.data, tokenizer, seed=cfg.trainer.seed, rank=self.env.rank,
                               world_size=self.env.world_size, grad_accum=cfg.trainer.grad_accum,
                               cache_dir=self.out / "manifests")
        self.monitor = None
        monitor_dir = cfg.monitor.data or next(iter(cfg.data.speech.dirs), None)
        sharded = self.env.distributed and cfg.trainer.parallel == "fsdp"  # the monitor runs outside forward()
        if sharded and self.env.is_main:
            log.info("monitor: off under FSDP (it reads the encoder outside forward, on the main process)")
        if cfg.monitor.every > 0 and monitor_dir and model.objective.weights.speech > 0 and self.env.is_main \
                and not sharded:
            part = held_out_batch(cfg.data.path(monitor_dir), cfg.monitor, data.cmvn, self.out / "manifests")
            self.monitor = CollapseMonitor(cfg.monitor, part)
        return model, data

    def run(self, progress_bar: bool = True) -> None:
        if self.monitor is not None and not self.monitor.initial:  # the spreads before the first step
            self.monitor.record(D.unwrap(self.model), self.step)
        super().run(progress_bar)

    def after_step(self, report: TrainReport) -> bool:
        """Every monitor.every steps: the collapse monitor's record (dev.jsonl) and its warnings."""
        if self.monitor is None or not self.monitor.due(self.step, self.cfg.trainer.max_steps):
            return False
        record, warnings = self.monitor.record(D.unwrap(self.model), self.step)
        report.log_dev(record)
        for w in warnings:
            log.warning(w)
        return False

    def task_state(self) -> dict:
        return {"monitor_initial": self.monitor.initial} if self.monitor is not None else {}

    def load_task_state(self, state: dict) -> None:
        if self.monitor is not None:
            self.monitor.initial = state.get("monitor_initial", {})

    def describe(self) -> None:
        for name, sampler in self.data.samplers.items():
            shares = ", ".join(f"{k} {v:.2f}" for k, v in sampler.language_share().items())
            log.info("data.%s: %d items; languages drawn with p = %s", name, len(sampler.lengths), shares)

    def data_state(self) -> dict:
        """What decides the data order from here on (the sampler's whole state is the step number)."""
        d = self.cfg.data
        sources = {n: dataclasses.asdict(getattr(d, n)) for n in ("speech", "text", "paired")}
        return {"seed": self.cfg.trainer.seed, "source_configs": sources, **self.data.fingerprint()}


# ---------------------------------------------------------------------- helpers
def _as_is(batch):
    return batch


def optimizer_step(optimizer: torch.optim.Optimizer, skipped: torch.Tensor) -> None:
    """The update, unless `skipped` (bool on the device). Fused Adam/AdamW take the flag as
    `found_inf` and skip on the device (parameters, moments and step count untouched); any other
    optimiser needs the host to read it."""
    if all(group.get("fused") for group in optimizer.param_groups):
        optimizer.found_inf = skipped.float()
        optimizer.step()
        optimizer.found_inf = None
    elif not bool(skipped):
        optimizer.step()


def micro_batch_seed(seed: int, step: int, micro_batch: int) -> int:
    return int(np.random.SeedSequence([seed, step, micro_batch]).generate_state(1)[0])


def autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def vocab_size_for(configured: int, tokenizer: CharTokenizer, path) -> int:
    """The model's vocabulary is the file's; a config that promises fewer symbols is a mistake."""
    if configured < len(tokenizer):
        raise ConfigError(f"model.vocab_size is {configured} but {path} has {len(tokenizer)} symbols; "
                          "raise model.vocab_size or rebuild the vocabulary with a smaller --max-size")
    return len(tokenizer)


def resume_point(out: Path, resume: bool) -> Path | None:
    if not resume:
        if list_checkpoints(out):
            raise CheckpointError(f"{out} already has checkpoints; pass --resume to continue that run, "
                                  "or choose another --output-dir")
        return None
    path = latest_valid_checkpoint(out)
    if path is None and list_checkpoints(out):
        raise CheckpointError(f"{out}: every checkpoint is unusable (see the warnings above)")
    if path is None:
        log.info("--resume: no checkpoint in %s yet; starting from step 0", out)
    return path


class LogWindow:
    """Sums over the steps since the last log record, kept on the device; reduced over processes and
    read by the host when logged."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.steps = 0
        self.skipped: torch.Tensor | float = 0.0
        self.grad_norm_sum: torch.Tensor | float = 0.0
        self.wait = self.busy = 0.0

    def add(self, result: StepResult, wait: float, busy: float) -> None:
        self.steps += 1
        self.wait, self.busy = self.wait + wait, self.busy + busy
        skip = result.skipped
        self.skipped = self.skipped + skip.float()
        for k, v in result.sums.items():  # a skipped step adds nothing (where, not a product: NaN * 0 = NaN)
            if isinstance(v, torch.Tensor):
                v = v.to(skip.device, non_blocking=True)
            self.sums[k] = self.sums.get(k, 0.0) + torch.where(skip, 0.0, v)
        if result.grad_norm is not None:
            self.grad_norm_sum = self.grad_norm_sum + torch.where(skip, 0.0, result.grad_norm.float())

    def record(self, step: int, lr: float, scaler, env: D.DistEnv) -> dict:
        keys = sorted(self.sums)  # the same keys, in the same order, in every process
        device = env.device
        local = [torch.as_tensor(self.sums[k], dtype=torch.float64, device=device).reshape(()) for k in keys]
        totals = D.all_reduce_sum(torch.stack(local) if local else torch.zeros(0, dtype=torch.float64, device=device),
                                  env)
        total = dict(zip(keys, totals.tolist()))
        skipped = int(float(self.skipped))
        elapsed = self.wait + self.busy
        rec = {"step": step, "lr": lr, "skipped_steps": skipped}
        n = total.pop("micro_batches", 0.0)
        frames, chars = total.pop("frames", 0.0), total.pop("chars", 0.0)
        rec.update({k: v / n for k, v in total.items()} if n else {})
        if self.steps > skipped:
            rec["grad_norm"] = float(self.grad_norm_sum) / (self.steps - skipped)
        if scaler.is_enabled():
            rec["loss_scale"] = scaler.get_scale()
        rec.update({"data_wait_frac": self.wait / max(elapsed, 1e-9), "step_time": elapsed / self.steps,
                    "frames_per_s": frames / max(elapsed, 1e-9), "chars_per_s": chars / max(elapsed, 1e-9)})
        return rec
