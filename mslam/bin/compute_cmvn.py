"""Global mean/variance statistics of the fbank features, from a random sample of a data dir's utterances.

    python -m mslam.bin.compute_cmvn data/train data/train/cmvn.npz [--max-utts 800] [--seed 0]

Unnormalised log-mel values (silence near -15, speech near +5) slow learning down; a few hundred
utterances pin the statistics down well enough, so a large corpus costs no more than a small one.
(`mslam.bin.compute_fbank` writes the same statistics over every utterance it dumps.)
"""
from __future__ import annotations

import argparse
import random
import sys

from tqdm import tqdm

from mslam.data.audio import AudioError
from mslam.data.features import CMVNStats, FbankConfig, load_features
from mslam.data.kaldi import DataDir, DataDirError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir")
    p.add_argument("out", help="cmvn.npz to write")
    p.add_argument("--max-utts", type=int, default=800, help="utterances sampled (default 800)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    try:
        d = DataDir(args.data_dir)
        ids = d.utt_ids
        random.Random(args.seed).shuffle(ids)
        stats = CMVNStats(FbankConfig().num_mel_bins)
        for utt in tqdm(ids[:args.max_utts], desc="cmvn", disable=args.no_progress):
            stats.add(load_features(d.utterance(utt)))
        stats.save(args.out)
    except (DataDirError, AudioError) as e:
        print(f"compute_cmvn: {e}", file=sys.stderr)
        return 1
    print(f"compute_cmvn: {min(args.max_utts, len(ids))} utterances of {args.data_dir} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
