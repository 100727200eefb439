"""Summarise pre-training runs: a table of the last logged value of each loss term and a PNG of the curves.

    python -m mslam.bin.pretrain_report --run mslam-ctc=exp/pretrain --out exp/pretrain/RESULTS.md \
        --plot exp/pretrain/loss.png

Reads each run's train.jsonl (written by mslam.bin.pretrain).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mslam.scoring.tables import markdown_table
from mslam.train.progress import read_json_log

LOSS_TERMS = ["loss", "w2v_contrastive", "w2v_mlm", "text_mlm", "tlm_speech", "tlm_text", "ctc"]
# The collapse monitor's last record (dev.jsonl: eval mode, held-out speech): spreads as a fraction of
# their value before training, and masked prediction beside predicting the commonest target.
MONITOR = {"utterance_spread_ratio": "utt. spread", "frame_spread_ratio": "frame spread",
           "w2v_mlm_acc": "MLM acc.", "w2v_mlm_majority_acc": "commonest target",
           "target_perplexity": "codes used"}
CURVES = LOSS_TERMS + ["utterance_spread_ratio", "frame_spread_ratio", "w2v_mlm_acc", "target_perplexity"]


def pretraining_section(runs: dict[str, str | os.PathLike], plot: str | os.PathLike,
                        link: str | None = None) -> str:
    """Markdown: one row per run (steps, seconds, last value of each loss term, the collapse monitor's
    last record) and the curves' PNG (drawn to `plot`, linked as `link`: a path relative to the markdown
    file; default `plot`)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logs = {name: read_json_log(Path(d) / "train.jsonl") for name, d in runs.items()
            if (Path(d) / "train.jsonl").is_file()}
    logs = {name: log for name, log in logs.items() if log}
    if not logs:
        return "No pre-training run found.\n"
    monitors = {name: read_json_log(Path(runs[name]) / "dev.jsonl") if (Path(runs[name]) / "dev.jsonl").is_file()
                else [] for name in logs}
    rows, collapsed = [], []
    for name, log in logs.items():
        last, seen = log[-1], (monitors[name] or [{}])[-1]
        seconds = sum(r["step_time"] * (r["step"] - p["step"]) for p, r in zip([{"step": 0}] + log, log))
        rows.append([name, last["step"], round(seconds), *(last.get(t) for t in LOSS_TERMS),
                     *(None if seen.get(k) is None else f"{seen[k]:.3g}" for k in MONITOR)])
        if seen.get("collapsed"):
            collapsed.append(f"{name} (step {seen['step']})")
    def source(term: str, name: str) -> list[dict]:  # losses from training, the rest from the monitor
        return logs[name] if term in LOSS_TERMS else monitors[name]

    terms = [t for t in CURVES if any(r.get(t) is not None for name in logs for r in source(t, name))]
    fig, axes = plt.subplots(1, len(terms), figsize=(3.2 * len(terms), 3), squeeze=False)
    for ax, term in zip(axes[0], terms):
        for name in logs:
            points = [(r["step"], r[term]) for r in source(term, name) if r.get(term) is not None]
            if points:
                ax.plot(*zip(*points), label=name)
        ax.set_title(term + (" (held-out)" if term not in LOSS_TERMS else ""))
        ax.set_xlabel("step")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    Path(plot).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(plot, dpi=90)
    plt.close(fig)
    warning = (f"\n**COLLAPSED at the last check: {', '.join(collapsed)}**: the encoder's output on held-out "
               "speech hardly depends on the input (see the monitor warnings in the run's log).\n"
               if collapsed else "")
    return (markdown_table(["encoder", "steps", "seconds", *LOSS_TERMS, *MONITOR.values()], rows) + warning
            + "\nLast logged value of each loss term (lower is better), then the collapse monitor's last check on "
              "held-out speech in eval mode: the spread of the encoder's output across utterances and across "
              "frames as a fraction of its value before training (near 0: the output no longer depends on the "
              "input), masked-prediction accuracy beside the accuracy of always predicting the commonest "
              f"target, and the perplexity of the targets' codes. ![pre-training curves]({link or Path(plot).as_posix()})\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", action="append", required=True, metavar="NAME=RUN_DIR")
    p.add_argument("--out", required=True, help="markdown file to write")
    p.add_argument("--plot", required=True, help="PNG of the loss curves")
    args = p.parse_args(argv)
    runs = {}
    for item in args.run:
        name, sep, path = item.partition("=")
        if not sep:
            p.error(f"--run {item}: expected NAME=RUN_DIR")
        runs[name] = path
    link = Path(os.path.relpath(args.plot, Path(args.out).resolve().parent)).as_posix()
    section = pretraining_section(runs, args.plot, link)
    if section.startswith("No pre-training run"):
        print(f"pretrain_report: no train.jsonl in {' '.join(runs.values())}", file=sys.stderr)
        return 1
    Path(args.out).write_text("# Pre-training\n\n" + section, encoding="utf-8")
    print(f"pretrain_report: wrote {args.out} and {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
