"""A Python launcher for ESPnet recipes: register the mslam classes, then run ESPnet's program as is.

    python -m mslam.espnet.run -m espnet2.bin.asr_train --encoder mslam ...
    python -m mslam.espnet.run -m espnet2.bin.asr_inference ...
    python -m mslam.espnet.run SCRIPT.py ARGS... | -c CODE ARGS...   (passed through, nothing registered)

ESPnet's recipe scripts (egs2/*/asr1/asr.sh, st.sh) run every program as `${python} -m espnet2.bin.X`
and take `--python`; so `asr.sh --python "python3 -m mslam.espnet.run"` runs each of them through
this launcher without touching ESPnet or the recipe. For `espnet2.bin.asr_*` (`st_*`) programs the
classes are first added to `espnet2.tasks.asr` (`espnet2.tasks.st`); other programs (launch,
tokenize_text, aggregate_stats_dirs, ...) start without that import.

Multi-GPU training: ESPnet spawns its workers with multiprocessing's "spawn", which re-imports the
main module of the parent under the name `__mp_main__`. The program is run here without replacing
`__main__` (`runpy.run_module(..., alter_sys=False)`), so the module re-imported in each worker is
this one, which registers again there (the tasks are passed on in MSLAM_ESPNET_TASKS).
"""
from __future__ import annotations

import importlib.util
import os
import runpy
import sys

from mslam.espnet import TASKS, register

ENV = "MSLAM_ESPNET_TASKS"
USAGE = "usage: python -m mslam.espnet.run (-m MODULE | -c CODE | SCRIPT) [ARGS...]"


def tasks_for(module: str) -> tuple[str, ...]:
    """The ESPnet tasks a program builds models of: espnet2.bin.asr_train -> ("asr",)."""
    prefix = "espnet2.bin."
    if not module.startswith(prefix):
        return ()
    name = module[len(prefix):]
    return tuple(t for t in TASKS if name.startswith(t + "_"))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE + "\n\n" + __doc__.strip())
        return 0 if args else 2
    if args[0] in ("-m", "-c") and len(args) < 2:
        print(f"mslam.espnet.run: {args[0]} needs an argument\n{USAGE}", file=sys.stderr)
        return 2
    if args[0] == "-m":
        module, rest = args[1], args[2:]
        tasks = tasks_for(module)
        os.environ[ENV] = ",".join(tasks)
        register(tasks)
        spec = importlib.util.find_spec(module)
        if spec is None:
            print(f"mslam.espnet.run: no module named {module}", file=sys.stderr)
            return 1
        sys.argv = [spec.origin or module, *rest]
        runpy.run_module(module, run_name="__main__", alter_sys=False)
    elif args[0] == "-c":
        sys.argv = ["-c", *args[2:]]
        exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__"})
    elif args[0].startswith("-"):
        print(f"mslam.espnet.run: interpreter option {args[0]} is not supported\n{USAGE}", file=sys.stderr)
        return 2
    else:
        sys.argv = list(args)
        runpy.run_path(args[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
elif __name__ == "__mp_main__":  # a worker spawned by ESPnet (multi-GPU): register here too
    register(tuple(t for t in os.environ.get(ENV, "").split(",") if t))
