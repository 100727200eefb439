"""What a run reports (main process only): a tqdm bar, TensorBoard scalars and `train.jsonl`, one JSON
object per logged step. On resume the JSON log is cut back to the checkpoint's step, so the file
always describes the run that produced the current parameters."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from tqdm import tqdm

from mslam.data.kaldi import atomic_write_text

# Shown in the bar (the JSON log and TensorBoard get everything).
BAR_KEYS = ("loss", "w2v_contrastive", "w2v_mlm", "text_mlm", "tlm_speech", "tlm_text", "ctc",
            "st", "mt", "asr", "intent_acc", "langid_acc")


def read_json_log(path: str | os.PathLike) -> list[dict]:
    """The records of a JSON-lines log; a torn last line (a run killed mid-write) is dropped."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = [line for line in f if line.strip()]
    records = []
    for i, line in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i < len(lines) - 1:
                raise ValueError(f"{path}:{i + 1}: not a JSON record") from None
    return records


def _open_log(path: Path, start_step: int):
    """Open a JSON-lines log for appending, first dropping what a killed run logged after its last
    checkpoint."""
    if path.exists():
        kept = [r for r in read_json_log(path) if r["step"] <= start_step]
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))
    return open(path, "a", encoding="utf-8")


class TrainReport:
    def __init__(self, output_dir: str | os.PathLike, start_step: int, max_steps: int, enabled: bool,
                 tensorboard: bool = True, progress_bar: bool = True, name: str = "train"):
        self.enabled = enabled
        if not enabled:
            return
        out = Path(output_dir)
        self.json_file = _open_log(out / "train.jsonl", start_step)
        self.dev_path, self.dev_file, self.start_step = out / "dev.jsonl", None, start_step
        self.tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(out / "tensorboard", purge_step=start_step + 1)
        self.bar = tqdm(total=max_steps, initial=start_step, desc=name, dynamic_ncols=True,
                        disable=not progress_bar, mininterval=1.0)

    def log(self, record: dict) -> None:
        if not self.enabled:
            return
        clean = {k: (v if not isinstance(v, float) or math.isfinite(v) else str(v)) for k, v in record.items()}
        self.json_file.write(json.dumps(clean) + "\n")
        self.json_file.flush()
        if self.tb is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k != "step":
                    self.tb.add_scalar(f"train/{k}", v, record["step"])
        shown = {k: f"{record[k]:.3g}" for k in BAR_KEYS if k in record}
        shown["lr"] = f"{record.get('lr', 0):.2e}"
        if "frames_per_s" in record:
            shown["fr/s"] = f"{record['frames_per_s']:.0f}"
        shown["wait"] = f"{record.get('data_wait_frac', 0):.0%}"
        self.bar.set_postfix(shown, refresh=False)

    def log_dev(self, record: dict) -> None:
        """A dev evaluation: dev.jsonl, TensorBoard (dev/...) and a line under the progress bar."""
        if not self.enabled:
            return
        if self.dev_file is None:
            self.dev_file = _open_log(self.dev_path, self.start_step)
        self.dev_file.write(json.dumps(record) + "\n")
        self.dev_file.flush()
        if self.tb is not None:
            for k, v in record.items():
                if isinstance(v, float):
                    self.tb.add_scalar(f"dev/{k}", v, record["step"])
        shown = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items())
        self.bar.write(f"dev: {shown}")

    def advance(self, steps: int = 1) -> None:
        if self.enabled:
            self.bar.update(steps)

    def message(self, text: str) -> None:
        if self.enabled:
            self.bar.write(text)

    def close(self) -> None:
        if self.enabled:
            self.bar.close()
            self.json_file.close()
            if self.dev_file is not None:
                self.dev_file.close()
            if self.tb is not None:
                self.tb.close()
