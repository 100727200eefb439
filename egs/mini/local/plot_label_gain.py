"""Table and plot of fine-tuning results against the number of labels, from local/label_gain.sh's runs.

    python local/plot_label_gain.py --runs exp/label_gain --out exp/label_gain/gain

Reads RUNS/<task>/<encoder>/n<N>/seed<S>/decode_test/scores.json. Writes OUT.md: per task and N, each
encoder's mean +- std over seeds, and each pre-trained encoder's gain over scratch (points, positive =
better: accuracy up, CER down) with its standard error; OUT.png: that gain against N, one panel per
task, error bars of one standard error.
"""
import argparse
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METRICS = {"asr": ("CER %", lambda s: s["average"]["cer"], -1),   # (name, value, sign of better)
           "langid": ("accuracy %", lambda s: s["accuracy"], 1),
           "intent": ("accuracy %", lambda s: s["accuracy"], 1)}
SCRATCH = "scratch"


def collect(runs: Path) -> dict:
    """{task: {n: {encoder: [value per seed]}}}, n as written ('10', 'all')."""
    found = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for path in sorted(runs.glob("*/*/n*/seed*/decode_test/scores.json")):
        seed_dir = path.parent.parent
        task, encoder, n = seed_dir.parent.parent.parent.name, seed_dir.parent.parent.name, seed_dir.parent.name[1:]
        if task not in METRICS:
            raise SystemExit(f"{path}: task '{task}' has no metric here (known: {', '.join(METRICS)})")
        found[task][n][encoder].append(METRICS[task][1](json.loads(path.read_text(encoding="utf-8"))))
    if not found:
        raise SystemExit(f"{runs}: no <task>/<encoder>/n<N>/seed<S>/decode_test/scores.json")
    return found


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def gain(task: str, encoder: list[float], scratch: list[float]) -> tuple[float, float]:
    """(mean gain over scratch in points, positive = better; its standard error)."""
    (m, s), (m0, s0) = mean_std(encoder), mean_std(scratch)
    return METRICS[task][2] * (m - m0), math.sqrt(s ** 2 / len(encoder) + s0 ** 2 / len(scratch))


def order(ns) -> list[str]:
    return sorted(ns, key=lambda n: math.inf if n == "all" else int(n))


def table(found: dict) -> str:
    lines = []
    for task, by_n in found.items():
        encoders = sorted({e for cells in by_n.values() for e in cells}, key=lambda e: (e != SCRATCH, e))
        pretrained = [e for e in encoders if e != SCRATCH]
        lines += [f"### {task}: test_few {METRICS[task][0]}, mean +- std over seeds (n seeds)", "",
                  "| labels per language | " + " | ".join(encoders) + "".join(f" | gain {e}" for e in pretrained)
                  + " |", "|---|" + "---|" * (len(encoders) + len(pretrained))]
        for n in order(by_n):
            cells = by_n[n]
            row = [f"{mean_std(cells[e])[0]:.1f} +- {mean_std(cells[e])[1]:.1f} ({len(cells[e])})" if e in cells
                   else "-" for e in encoders]
            for e in pretrained:
                if e in cells and SCRATCH in cells:
                    row.append("{:+.1f} +- {:.1f}".format(*gain(task, cells[e], cells[SCRATCH])))
                else:
                    row.append("-")
            lines.append(f"| {n} | " + " | ".join(row) + " |")
        lines.append("")
    lines.append("Gain: points better than scratch (accuracy up, CER down) +- its standard error.")
    return "\n".join(lines) + "\n"


def plot(found: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, len(found), figsize=(5 * len(found), 3.6), squeeze=False)
    for ax, (task, by_n) in zip(axes[0], found.items()):
        ns = order(by_n)
        for encoder in sorted({e for cells in by_n.values() for e in cells} - {SCRATCH}):
            points = [(i, *gain(task, by_n[n][encoder], by_n[n][SCRATCH])) for i, n in enumerate(ns)
                      if encoder in by_n[n] and SCRATCH in by_n[n]]
            if points:
                x, g, se = zip(*points)
                ax.errorbar(x, g, yerr=se, marker="o", capsize=3, label=encoder)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(range(len(ns)), ns)
        ax.set(title=task, xlabel="labelled utterances per language",
               ylabel=f"gain over scratch ({METRICS[task][0].split()[0]} points)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", default="exp/label_gain")
    p.add_argument("--out", default="exp/label_gain/gain", help="writes OUT.md and OUT.png")
    args = p.parse_args()
    found = collect(Path(args.runs))
    out = Path(args.out)
    out.with_suffix(".md").write_text(table(found), encoding="utf-8")
    plot(found, out.with_suffix(".png"))
    print(out.with_suffix(".md").read_text(encoding="utf-8"), end="")


if __name__ == "__main__":
    main()
