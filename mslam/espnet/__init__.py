"""The ESPnet bridge: a pre-trained mslam encoder inside ESPnet's own ASR (and ST) recipes.

Two classes, added to ESPnet's class tables at run time (ESPnet itself is not modified):

    encoder: mslam          MslamEncoder (mslam/espnet/encoder.py): JointEncoder speech path, from a checkpoint
    frontend: mslam_fbank   MslamFbankFrontend (mslam/espnet/frontend.py): mslam's Kaldi-compatible fbank

`register()` adds them to `espnet2.tasks.asr.{encoder,frontend}_choices` (and `espnet2.tasks.st`'s).
Entry points that register, then run ESPnet's own program unchanged:

    python -m mslam.espnet.run -m espnet2.bin.asr_train ...   # any `python -m espnet2.bin.X` (asr.sh --python)
    python -m mslam.espnet.asr_train ...                       # = espnet2.bin.asr_train

From Python (e.g. ESPnet's Speech2Text on a model trained with the mslam encoder):

    import mslam.espnet; mslam.espnet.register()

Nothing in mslam's core imports this package; it needs ESPnet (espnet2) installed. See README.md.
"""
from __future__ import annotations

import importlib

TASKS = ("asr", "st")           # ESPnet task modules (espnet2.tasks.X) the classes are added to
ENCODER_NAME = "mslam"
FRONTEND_NAME = "mslam_fbank"


def register(tasks: tuple[str, ...] | list[str] = ("asr",)) -> None:
    """Add `encoder: mslam` and `frontend: mslam_fbank` to the class choices of ESPnet's tasks.

    Idempotent. Must run before the task builds its argument parser (its `--encoder` choices are
    fixed then), i.e. before `espnet2.bin.<task>_train.main()` / `<Task>.main()` or inference.
    """
    from mslam.espnet.encoder import MslamEncoder
    from mslam.espnet.frontend import MslamFbankFrontend
    for task in tasks:
        if task not in TASKS:
            raise ValueError(f"mslam.espnet.register: task {task!r} is not supported (supported: {', '.join(TASKS)})")
        module = importlib.import_module(f"espnet2.tasks.{task}")
        module.encoder_choices.classes[ENCODER_NAME] = MslamEncoder
        module.frontend_choices.classes[FRONTEND_NAME] = MslamFbankFrontend


def registered(task: str = "asr") -> bool:
    """Whether the classes are in the (already imported or importable) task's choices."""
    module = importlib.import_module(f"espnet2.tasks.{task}")
    return ENCODER_NAME in module.encoder_choices.classes and FRONTEND_NAME in module.frontend_choices.classes


def __getattr__(name: str):  # the classes, without importing ESPnet on `import mslam.espnet`
    if name == "MslamEncoder":
        from mslam.espnet.encoder import MslamEncoder
        return MslamEncoder
    if name == "MslamFbankFrontend":
        from mslam.espnet.frontend import MslamFbankFrontend
        return MslamFbankFrontend
    raise AttributeError(f"module 'mslam.espnet' has no attribute {name!r}")
