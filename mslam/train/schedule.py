"""Adam with the Transformer schedule (mSLAM): linear warm-up to the peak, then inverse square-root decay."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class OptimConfig:
    peak_lr: float = 6e-4        # paper: 6e-4 (0.6B), 3.6e-4 (2B)
    warmup_steps: int = 40000    # paper: 40k
    beta1: float = 0.9           # unknown in the paper; the Transformer's betas
    beta2: float = 0.98
    eps: float = 1e-9            # unknown in the paper; the Transformer's
    weight_decay: float = 0.0    # unknown in the paper; none
    clip_grad_norm: float = 5.0  # unknown in the paper; 0 = no clipping
    fused: bool = True           # one fused kernel for the update (CPU and CUDA), which also skips a
                                 # non-finite step on the device; false: torch's default (foreach)

    def __post_init__(self):
        if self.peak_lr <= 0 or self.warmup_steps < 1:
            raise ValueError(f"need peak_lr > 0 and warmup_steps >= 1, got {self.peak_lr}, {self.warmup_steps}")


@dataclass
class Ramp:
    """A factor that is 0 up to `start_step`, then grows linearly to 1 over `ramp_steps` (0 / 0: 1 from
    the start). A function of the step number alone, so a resumed run follows it exactly."""
    start_step: int = 0
    ramp_steps: int = 0

    def __post_init__(self):
        if self.start_step < 0 or self.ramp_steps < 0:
            raise ValueError(f"need start_step >= 0 and ramp_steps >= 0, got {self.start_step}, {self.ramp_steps}")

    def at(self, step: int) -> float:
        if step <= self.start_step:
            return 0.0 if self.start_step > 0 else 1.0
        return min(1.0, (step - self.start_step) / self.ramp_steps) if self.ramp_steps > 0 else 1.0


def lr_factor(step: int, warmup_steps: int) -> float:
    """Multiplier of the peak LR at optimiser step `step` (1-based): step/warmup, then sqrt(warmup/step)."""
    step = max(step, 1)
    return min(step / warmup_steps, math.sqrt(warmup_steps / step))


def fused_available(params) -> bool:
    """Whether torch has a fused Adam kernel for every parameter (floating point, on a CPU or GPU, a plain
    tensor: FSDP2's sharded DTensor parameters make the fused kernel call .tolist(), which they refuse)."""
    return bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda")
                                and type(p.data) is torch.Tensor for p in params)


def build_optimizer(model: torch.nn.Module, cfg: OptimConfig):
    """Adam and its LambdaLR; the scheduler's step count is the optimiser step count."""
    params = list(model.parameters())
    optimizer = torch.optim.Adam(params, lr=cfg.peak_lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
                                 weight_decay=cfg.weight_decay, fused=cfg.fused and fused_available(params))
    # LambdaLR evaluates its lambda at 0 on construction: that is the LR of step 1.
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: lr_factor(i + 1, cfg.warmup_steps))
    return optimizer, scheduler
