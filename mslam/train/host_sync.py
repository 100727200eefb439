"""Find the places where the host waits for the device: `HostSyncRecorder`, a TorchFunctionMode that
records every torch call that reads a tensor's values on the host or whose output shape depends on
them. Works on a CPU (where nothing waits, but the same calls would on a GPU), so a CPU test can show
that a training step launches its work without ever waiting.

    with HostSyncRecorder() as rec:
        trainer.train_step(batch)
    assert not rec.calls, rec.report()
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass

import torch
from torch.overrides import TorchFunctionMode

# Calls that copy a value to the host, or size their output by the data (a host read of a count).
SYNCING = {
    "item", "tolist", "numpy", "__bool__", "__int__", "__float__", "__index__", "__complex__", "is_nonzero",
    "nonzero", "nonzero_static_", "argwhere", "masked_select", "unique", "unique_consecutive", "_unique",
    "_unique2", "bincount", "equal", "allclose", "_local_scalar_dense",
    "ctc_loss",  # torch's CTC copies the lengths to the host (the tensor overload, on every device)
}


@dataclass
class SyncCall:
    name: str
    where: str  # the innermost frame outside torch that made the call

    def __str__(self) -> str:
        return f"{self.name} at {self.where}"


def _has_bool_index(index) -> bool:
    if isinstance(index, torch.Tensor):
        return index.dtype == torch.bool
    if isinstance(index, (tuple, list)):
        return any(_has_bool_index(i) for i in index)
    return False


def _caller() -> str:
    for frame in reversed(traceback.extract_stack()[:-3]):
        f = frame.filename
        if "/torch/" not in f and not f.endswith("host_sync.py"):
            return f"{f.rsplit('/', 2)[-2]}/{f.rsplit('/', 1)[-1]}:{frame.lineno} ({frame.line})"
    return "?"


class HostSyncRecorder(TorchFunctionMode):
    """Records (does not block) every call in SYNCING, indexing with a boolean mask (`x[mask]`,
    `x[mask] = v`: a nonzero() inside), `torch.where(cond)` with one argument, `repeat_interleave`
    without output_size, and copies from an accelerator to the CPU."""

    def __init__(self):
        super().__init__()
        self.calls: list[SyncCall] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        reason = None
        if name in SYNCING:
            reason = name
        elif name in ("__getitem__", "__setitem__", "index_put_", "index_put") and len(args) > 1 \
                and _has_bool_index(args[1]):
            reason = f"{name} with a boolean mask"
        elif name == "where" and len(args) + len(kwargs) == 1:
            reason = "where(condition)"
        elif name == "repeat_interleave" and "output_size" not in kwargs:
            reason = "repeat_interleave without output_size"
        elif name in ("cpu", "to") and args and isinstance(args[0], torch.Tensor) and args[0].device.type != "cpu":
            target = func(*args, **kwargs)
            if target.device.type == "cpu":
                self.calls.append(SyncCall(f"{name} (to the CPU)", _caller()))
            return target
        if reason is not None:
            self.calls.append(SyncCall(reason, _caller()))
        return func(*args, **kwargs)

    def report(self) -> str:
        return f"{len(self.calls)} host syncs:\n" + "\n".join(f"  {c}" for c in self.calls)
