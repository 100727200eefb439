"""The `trainer` section of a pre-training config."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class TrainerConfig:
    max_steps: int = 1300000         # paper: 1.3M steps (0.6B), 350k (2B)
    grad_accum: int = 1              # micro-batches per process per step (the global batch is split)
    seed: int = 0                    # initial parameters, data order, masks and dropout
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # bf16/fp16: autocast; fp16 adds a grad scaler
    device: Literal["auto", "cpu", "cuda"] = "auto"
    parallel: Literal["ddp", "fsdp"] = "ddp"   # under torchrun: DDP replicas, or FSDP2 sharding
    activation_checkpointing: bool = False     # recompute Conformer blocks in backward (memory for time)
    # torch.compile the model's losses per data source (all but CTC's recursion, which stays eager), one graph
    # per batch shape: use with data.static_shapes, else every new length compiles again
    compile: bool = False
    save_every: int = 1000           # steps between checkpoints (and at the last step)
    keep_checkpoints: int = 5        # newest checkpoints kept (0: all)
    log_every: int = 10              # steps between JSON-log / TensorBoard records
    max_nonfinite_in_row: int = 10   # stop after this many consecutive steps with a NaN/inf loss
    tensorboard: bool = True

    def __post_init__(self):
        for name in ("max_steps", "grad_accum", "save_every", "log_every", "max_nonfinite_in_row"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
