"""Helpers shared by the test directories (importable as `testlib`: pytest puts test/ on sys.path
for test/conftest.py): the tiny pre-training overrides, the tiny fine-tuning model, and the
shortest-utterance subsets that overfitting and fault tests train on."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The tiny fine-tuning model and head: seconds per run on a CPU.
TINY_MODEL = {"vocab_size": 512, "frontend": {"conv_channels": 8},
              "encoder": {"d_model": 64, "ffn_dim": 128, "heads": 4, "speech_layers": 1, "shared_layers": 1,
                          "conv_norm_groups": 8, "dropout": 0.0}}
TINY_HEAD = {"decoder": {"layers": 1, "d_model": 64, "heads": 4, "ffn_dim": 128, "dropout": 0.0,
                         "label_smoothing": 0.0},
             "rnnt": {"layers": 1, "hidden": 64, "joint_dim": 64, "dropout": 0.0}, "classifier_dropout": 0.0}


def tiny_overrides(corpus: Path, **extra) -> list[str]:
    """`--set` arguments: the tiny model on the tiny corpus, logging every step, CPU, no TensorBoard."""
    sets = {
        "data.root": str(corpus), "data.vocab": "chars.txt", "model.vocab_size": 512,
        "data.speech": "{dirs: [speech/train], batch_sequences: 4}",
        "data.text": "{dirs: [text_shards/train], batch_sequences: 8}",
        "data.paired": "{dirs: [asr/train], batch_sequences: 4}",
        "data.num_workers": 0, "optim.warmup_steps": 5, "optim.peak_lr": 1e-3,
        "trainer.log_every": 1, "trainer.save_every": 5, "trainer.device": "cpu", "trainer.tensorboard": False,
    }
    sets.update(extra)
    return [f"{k}={v}" for k, v in sets.items()]


def shortest_subset(src: Path, dst: Path, n: int, table: str = "utt2num_samples",
                    distinct: str | None = None) -> Path:
    """The n shortest utterances of a data dir by `table` (samples, or the length of a text table),
    with distinct values of table `distinct` when given."""
    from mslam.data.kaldi import read_table, subset_data_dir
    size = read_table(src / table)
    key = (lambda u: int(size[u])) if table == "utt2num_samples" else (lambda u: len(size[u]))
    labels = read_table(src / distinct) if distinct else {}
    chosen, seen = [], set()
    for u in sorted(size, key=lambda u: (key(u), u)):
        if distinct and labels[u] in seen:
            continue
        seen.add(labels.get(u))
        chosen.append(u)
        if len(chosen) == n:
            break
    subset_data_dir(src, dst, utt_list=chosen)
    return dst
