"""PNG plots: confusion matrices, and bars comparing models on the tables' columns."""
from __future__ import annotations

import os
from typing import Mapping


def _pyplot():
    """matplotlib on first use: importing it costs 0.6 s in every program that scores."""
    import matplotlib
    matplotlib.use("Agg")  # files only; no display
    import matplotlib.pyplot as plt
    return plt


def confusion_png(scores: dict, path: str | os.PathLike, title: str = "") -> None:
    """Row-normalised confusion matrix of an accuracy scores dict (rows: reference class)."""
    plt = _pyplot()
    classes, matrix = scores["classes"], scores["confusion"]
    rates = [[n / max(sum(row), 1) for n in row] for row in matrix]
    size = max(4.0, 0.4 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=90)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    if len(classes) <= 20:
        for i, row in enumerate(matrix):
            for j, n in enumerate(row):
                if n:
                    ax.text(j, i, str(n), ha="center", va="center", fontsize=7,
                            color="white" if rates[i][j] > 0.5 else "black")
    ax.set_title(title or f"accuracy {scores['accuracy']:.1f}%")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def bar_chart(values: Mapping[str, Mapping[str, float | None]], path: str | os.PathLike, ylabel: str,
              title: str = "") -> None:
    """Grouped bars: values[column][model]."""
    plt = _pyplot()
    columns = list(values)
    models = list(dict.fromkeys(m for col in values.values() for m in col))
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(columns) * max(len(models), 1) * 0.5), 3.5))
    for k, model in enumerate(models):
        xs = [i + k * width for i in range(len(columns))]
        ax.bar(xs, [values[c].get(model) or 0.0 for c in columns], width, label=model)
    ax.set_xticks([i + width * (len(models) - 1) / 2 for i in range(len(columns))], columns)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def training_curves_png(train: list[dict], dev: list[dict], task: str, path: str | os.PathLike,
                        title: str = "") -> None:
    """Train and dev loss against the step (left), and the dev metric, with the train accuracy where
    the task has one (right): generalisation at a glance (records of train.jsonl and dev.jsonl)."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    for records, label, key in ((train, "train", "loss"), (dev, "dev", "loss")):
        points = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
        if points:
            left.plot(*zip(*points), marker="." if label == "dev" else None, label=f"{label} loss")
    left.set_xlabel("step")
    left.set_ylabel("loss")
    if left.lines:
        left.legend(fontsize=8)
    for records, label, key in ((dev, "dev", "acc"), (dev, "dev", "cer"), (dev, "dev", "bleu"),
                                (train, "train", f"{task}_acc")):
        points = [(r["step"], 100.0 * r[key] if key.endswith("acc") else r[key])
                  for r in records if isinstance(r.get(key), (int, float))]
        if points:
            right.plot(*zip(*points), marker="." if label == "dev" else None,
                       label=f"{label} {'accuracy %' if key.endswith('acc') else key.upper()}")
    right.set_xlabel("step")
    if right.lines:
        right.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
