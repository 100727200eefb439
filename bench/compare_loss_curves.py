"""Loss curves of two pre-training paths (train.jsonl of one or more seeds each) on one plot, with a
computed verdict per loss term.

    python bench/compare_loss_curves.py --a eager/s0/train.jsonl eager/s1/train.jsonl eager/s2/train.jsonl \
        --b new/s0/train.jsonl new/s1/train.jsonl new/s2/train.jsonl --labels eager new --out curves.png

Per run and loss term, the mean over the last quarter of the steps; per path, the mean and standard
deviation of those over its runs (seeds). The paths agree within noise on a term when their difference
is at most twice its standard error, sqrt(sd_a^2/n_a + sd_b^2/n_b). With one run per path there is no
seed spread, and the step-to-step spread of the first run's last quarter stands in for it (weaker).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics

TERMS = ("loss", "w2v_contrastive", "w2v_mlm", "text_mlm", "tlm_text", "tlm_speech", "ctc")


def read(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def tail(log: list[dict], term: str) -> list[float]:
    last = max(r["step"] for r in log)
    return [r[term] for r in log if term in r and r["step"] > 0.75 * last]


def verdict(a: list[list[dict]], b: list[list[dict]], term: str) -> tuple[float, float, float, str] | None:
    """(mean of path a, mean of path b, standard error of the difference, verdict) over the runs' tails."""
    tails = [[tail(log, term) for log in path] for path in (a, b)]
    if not all(t for path in tails for t in path):
        return None
    means = [[statistics.mean(t) for t in path] for path in tails]
    if min(len(m) for m in means) > 1:
        se = math.sqrt(sum(statistics.variance(m) / len(m) for m in means))
    else:  # one run per path: the step-to-step spread of path a's tail
        se = statistics.stdev(tails[0][0]) if len(tails[0][0]) > 1 else float("nan")
    ma, mb = statistics.mean(means[0]), statistics.mean(means[1])
    return ma, mb, se, "agree" if abs(mb - ma) <= 2 * se else "differ"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", nargs="+", required=True, help="train.jsonl of each run (seed) of the first path")
    p.add_argument("--b", nargs="+", required=True, help="train.jsonl of each run (seed) of the second path")
    p.add_argument("--labels", nargs=2, default=["a", "b"])
    p.add_argument("--out", required=True, help="the plot (.png)")
    args = p.parse_args()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    paths = [[read(r) for r in args.a], [read(r) for r in args.b]]
    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    for ax, term in zip(axes.flat, TERMS):
        for path, label, color in zip(paths, args.labels, ("tab:blue", "tab:orange")):
            for i, log in enumerate(path):
                pts = [(r["step"], r[term]) for r in log if term in r]
                if pts:
                    ax.plot(*zip(*pts), color=color, alpha=0.6, lw=1, label=label if i == 0 else None)
        ax.set_title(term)
        ax.set_xlabel("step")
    axes.flat[0].legend()
    axes.flat[-1].axis("off")
    fig.suptitle(f"{args.labels[0]} ({len(args.a)} runs) vs {args.labels[1]} ({len(args.b)} runs)")
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(f"| term | {args.labels[0]} | {args.labels[1]} | difference | 2 x standard error | verdict |")
    print("|---|---:|---:|---:|---:|---|")
    for term in TERMS:
        v = verdict(*paths, term)
        if v:
            ma, mb, se, word = v
            print(f"| {term} | {ma:.3f} | {mb:.3f} | {mb - ma:+.3f} | {2 * se:.3f} | {word} |")


if __name__ == "__main__":
    main()
