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
BAR_KEYS = ("loss", "w2v_contrastive", "w2v_mlm", "text_mlm", "tlm_speech", "tlm_text", "ctc")


def read_json_log(path: str | os.PathLike) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class TrainReport:
    def __init__(self, output_dir: str | os.PathLike, start_step: int, max_steps: int, enabled: bool,
                 tensorboard: bool = True, progress_bar: bool = True):
        self.enabled = enabled
        if not enabled:
            return
        out = Path(output_dir)
        self.json_path = out / "train.jsonl"
        if self.json_path.exists():  # drop what a killed run logged after its last checkpoint
            kept = [r for r in read_json_log(self.json_path) if r["step"] <= start_step]
            atomic_write_text(self.json_path, "".join(json.dumps(r) + "\n" for r in kept))
        self.json_file = open(self.json_path, "a", encoding="utf-8")
        self.tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(out / "tensorboard", purge_step=start_step + 1)
        self.bar = tqdm(total=max_steps, initial=start_step, desc="pretrain", dynamic_ncols=True,
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
            if self.tb is not None:
                self.tb.close()
