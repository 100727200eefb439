"""Print a pre-training config's parameter count per part, built on the meta device (no memory).

    python -m mslam.bin.model_info --config mslam/conf/pretrain/mslam_0.6b.yaml
    python -m mslam.bin.model_info --config mslam_2b        # a shipped config, by name
"""
from __future__ import annotations

import argparse
import sys

from mslam.config import ConfigError
from mslam.model.pretrain import parameter_groups
from mslam.tasks.pretrain import build_pretrain_model, load_pretrain_config, resolve_config

LABELS = {"speech_frontend": "speech front end", "text_frontend": "text front end",
          "speech_stack": "speech stack", "shared_stack": "shared stack", "quantizer": "quantiser",
          "heads": "heads (+ mask vector)", "total": "total"}


def model_info(config) -> dict[str, int]:
    cfg = load_pretrain_config(config)
    return parameter_groups(build_pretrain_model(cfg, device="meta"))


def format_counts(counts: dict[str, int]) -> str:
    lines = []
    for key, label in LABELS.items():
        n = counts[key]
        if key == "total":
            lines.append("-" * 52)
        lines.append(f"{label:<24}{n:>15,}  {n / 1e6:10.3f} M")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="pre-training YAML, or the name of a shipped config")
    args = ap.parse_args(argv)
    try:
        path = resolve_config(args.config)
        cfg = load_pretrain_config(path)
        counts = parameter_groups(build_pretrain_model(cfg, device="meta"))
    except ConfigError as e:
        print(f"model_info: {e}", file=sys.stderr)
        return 2
    e = cfg.model.encoder
    print(f"config: {path} (variant {cfg.objective.variant}; {e.speech_layers}+{e.shared_layers} layers, "
          f"d {e.d_model}, ffn {e.ffn_dim}, {e.heads} heads)")
    print(format_counts(counts))
    print(f"total: {counts['total'] / 1e9:.3f} B parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
