"""Loss curves of two pre-training runs (train.jsonl) on one plot, and how far apart they are.

    python bench/compare_loss_curves.py base/train.jsonl new/train.jsonl --labels eager new --out curves.png

Prints, per loss term, the mean over the last quarter of the steps in each run and the difference
in units of the step-to-step spread of the first run (noise: the standard deviation of its records
over that quarter around their mean).
"""
from __future__ import annotations

import argparse
import json
import statistics

TERMS = ("loss", "w2v_contrastive", "w2v_mlm", "text_mlm", "tlm_text", "tlm_speech", "ctc")


def read(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs=2)
    p.add_argument("--labels", nargs=2, default=["a", "b"])
    p.add_argument("--out", required=True)
    args = p.parse_args()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    logs = [read(r) for r in args.runs]
    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    for ax, term in zip(axes.flat, TERMS):
        for log, label in zip(logs, args.labels):
            pts = [(r["step"], r[term]) for r in log if term in r]
            ax.plot(*zip(*pts), label=label)
        ax.set_title(term)
        ax.set_xlabel("step")
    axes.flat[0].legend()
    axes.flat[-1].axis("off")
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    last = max(r["step"] for r in logs[0])
    print(f"| term | {args.labels[0]} | {args.labels[1]} | difference / spread of {args.labels[0]} |")
    print("|---|---:|---:|---:|")
    for term in TERMS:
        tails = [[r[term] for r in log if term in r and r["step"] > 0.75 * last] for log in logs]
        if not all(tails) or len(tails[0]) < 2:
            continue
        spread = statistics.stdev(tails[0])
        a, b = statistics.mean(tails[0]), statistics.mean(tails[1])
        print(f"| {term} | {a:.3f} | {b:.3f} | {(b - a) / spread:+.2f} |")


if __name__ == "__main__":
    main()
