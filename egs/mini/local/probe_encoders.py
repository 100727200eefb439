"""Linear probes: what each layer of a frozen encoder says about a label, before any fine-tuning.

    python local/probe_encoders.py --data data --exp exp --models "none w2v-bert mslam-ctc" --out exp/probe.json

For each encoder (none: the from-scratch initialisation of conf mini; otherwise the newest checkpoint of
exp/pretrain_<model>) and each task (langid: utt2lang, intent: utt2intent), every layer's output (front
end, then each Conformer layer) is mean-pooled over time, a multinomial logistic regression is fitted on
the few-label training set and scored on the test set (held-out voices and numbers). The result tells
whether pre-training made the label easier to read off a layer than a random encoder does, independently
of how fine-tuning uses the encoder.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from mslam.data.features import CMVNStats
from mslam.data.finetune_data import BatchConfig, collate, fixed_batches, speech_examples
from mslam.model.conformer import lengths_to_valid, masked_mean
from mslam.model.encoder import JointEncoder
from mslam.tasks.pretrain import build_pretrain_model, load_pretrain_config
from mslam.train.checkpoint import load_model_state

LABEL_TABLES = {"langid": "utt2lang", "intent": "utt2intent"}


def load_encoder(model: str, exp: Path, config: str) -> JointEncoder:
    if model == "none":  # the same initialisation fine-tuning from scratch starts from
        torch.manual_seed(0)
        return build_pretrain_model(load_pretrain_config(config)).encoder.eval()
    state, run_config, _ = load_model_state(exp / f"pretrain_{model}")
    pretrain = build_pretrain_model(load_pretrain_config(run_config))
    pretrain.load_state_dict(state)
    return pretrain.encoder.eval()


@torch.no_grad()
def pooled_layers(encoder: JointEncoder, data_dir: Path, labels: dict[str, int], cmvn: CMVNStats):
    """[layers, utterances, D] mean-pooled hidden states and [utterances] label ids."""
    examples = speech_examples(data_dir, LABEL_TABLES[data_dir.parent.name],
                               lambda value, utt: labels.setdefault(value, len(labels)))
    pooled, targets = [], []
    for batch_examples in fixed_batches(examples, BatchConfig(batch_frames=8000, max_frames=3000)):
        batch = collate(batch_examples, cmvn=cmvn)
        states, lens = encoder.hidden_states(batch.feats, batch.feat_lens)
        valid = lengths_to_valid(lens, states[0].shape[1])
        pooled.append(torch.stack([masked_mean(h, valid) for h in states]))
        targets += [e.target for e in batch_examples]
    return torch.cat(pooled, 1), torch.tensor(targets)


def probe_accuracy(train_x, train_y, test_x, test_y, classes: int, l2: float = 1e-2) -> float:
    """Test accuracy of an L2-regularised logistic regression on standardised features (LBFGS)."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-5
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    w = torch.zeros(train_x.shape[1], classes, requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(train_x @ w + b, train_y) + l2 * w.square().sum()
        loss.backward()
        return loss
    opt.step(closure)
    return float(((test_x @ w + b).argmax(1) == test_y).float().mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data")
    p.add_argument("--exp", default="exp")
    p.add_argument("--models", default="none w2v-bert mslam-tlm mslam-ctc")
    p.add_argument("--tasks", default="langid intent")
    p.add_argument("--config", default="mini", help="pre-training config of the from-scratch encoder")
    p.add_argument("--out", required=True, help="JSON: {task: {model: [accuracy per layer]}}")
    args = p.parse_args()
    data, exp = Path(args.data), Path(args.exp)
    cmvn = CMVNStats.load(data / "cmvn.npz")
    result: dict[str, dict[str, list[float]]] = {}
    for task in args.tasks.split():
        result[task] = {}
        for model in args.models.split():
            encoder = load_encoder(model, exp, args.config)
            labels: dict[str, int] = {}
            train_x, train_y = pooled_layers(encoder, data / task / "train_few", labels, cmvn)
            test_x, test_y = pooled_layers(encoder, data / task / "test_few", labels, cmvn)
            result[task][model] = [round(100 * probe_accuracy(train_x[i], train_y, test_x[i], test_y, len(labels)), 1)
                                   for i in range(train_x.shape[0])]
            print(f"probe {task} {model}: " + " ".join(f"{a:.1f}" for a in result[task][model]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
