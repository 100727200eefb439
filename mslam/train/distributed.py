"""Processes and devices: torchrun's environment, DDP or FSDP2 wrapping, the few collectives the
trainer needs, and full (unsharded) state dicts for checkpoints whatever the wrapping."""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from mslam.config import ConfigError


@dataclass
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistEnv:
    """Read torchrun's RANK/WORLD_SIZE/LOCAL_RANK; NCCL on GPUs, gloo on CPUs."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", 0))
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and torch.cuda.device_count() <= local:
        raise ConfigError(f"trainer.device: cuda asks for GPU {local}, but this machine has "
                          f"{torch.cuda.device_count()} usable GPU(s); use trainer.device=cpu or auto "
                          f"(in a recipe: --ngpu auto, which uses the GPUs there are, or --ngpu 0)")
    dev = torch.device("cuda", local) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", device_id=dev if use_cuda else None)
    return DistEnv(rank, world, local, dev)


def wrap_model(model: torch.nn.Module, parallel: str, env: DistEnv, find_unused: bool = False) -> torch.nn.Module:
    """`ddp`: replicas with averaged gradients; `fsdp`: FSDP2 (parameters, gradients and optimiser
    state sharded per Conformer block); either is a no-op in a single process."""
    if not env.distributed:
        return model
    if parallel == "ddp":
        ids = [env.device.index] if env.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)
    if parallel == "fsdp":
        from torch.distributed.fsdp import fully_shard
        from mslam.model.conformer import ConformerBlock
        for module in model.modules():
            if isinstance(module, ConformerBlock):
                fully_shard(module)
        return fully_shard(model)
    raise ValueError(f"trainer.parallel: unknown {parallel!r} (ddp, fsdp)")


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def gradient_sync(model: torch.nn.Module, enabled: bool):
    """Skip the gradient all-reduce on all but the last micro-batch of a step."""
    if isinstance(model, torch.nn.parallel.DistributedDataParallel) and not enabled:
        return model.no_sync()
    if hasattr(model, "set_requires_gradient_sync"):  # FSDP2
        model.set_requires_gradient_sync(enabled)
    return contextlib.nullcontext()


def all_reduce_sum(t: torch.Tensor, env: DistEnv) -> torch.Tensor:
    if env.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_gather_objects(obj, env: DistEnv) -> list:
    """Every process's `obj` (picklable), in rank order, in every process."""
    if not env.distributed:
        return [obj]
    out = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def rank_share(items: list, env: DistEnv, parallel: str = "ddp") -> list:
    """This process's part of a fixed list of evaluation batches: every world_size-th, from its rank.
    Under FSDP every process keeps the whole list: a sharded forward (and each decoding step) is a
    collective, so all processes must run the same batches in step."""
    if not env.distributed or parallel == "fsdp":
        return items
    return items[env.rank::env.world_size]


def full_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Unsharded model and optimiser state on the CPU (collective under FSDP; rank 0 gets it)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict  # 0.8 s: on first use
    opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_state_dict(unwrap(model), optimizer, options=opts)


def load_full_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, model_state: dict,
                    optim_state: dict) -> None:
    # Parameters that had no gradient yet (a frozen encoder, an unused text front end) have no
    # optimiser state: the model loads strictly, the optimiser state as far as it exists.
    from torch.distributed.checkpoint.state_dict import (StateDictOptions, set_model_state_dict,
                                                         set_optimizer_state_dict)
    set_model_state_dict(unwrap(model), model_state, options=StateDictOptions(full_state_dict=True))
    set_optimizer_state_dict(unwrap(model), optimizer, optim_state,
                             options=StateDictOptions(full_state_dict=True, strict=False))


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


def shutdown(env: DistEnv) -> None:
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()
