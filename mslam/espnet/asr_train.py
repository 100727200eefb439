"""ESPnet's ASR training (espnet2.bin.asr_train) with `encoder: mslam` / `frontend: mslam_fbank` available.

    python -m mslam.espnet.asr_train --config conf/train_asr_mslam.yaml ...   # same options as espnet2.bin.asr_train

Equivalent to `python -m mslam.espnet.run -m espnet2.bin.asr_train ...`, the form a recipe's asr.sh
uses through `--python` (see mslam/espnet/run.py and README.md).
"""
from __future__ import annotations

from mslam.espnet import register


def main(cmd: list[str] | None = None) -> None:
    register(("asr",))
    from espnet2.bin.asr_train import main as espnet_main
    espnet_main(cmd)


if __name__ == "__main__":
    main()
elif __name__ == "__mp_main__":  # a worker spawned by ESPnet (multi-GPU): register here too
    register(("asr",))
