"""Global mean/variance statistics of the fbank features, from a random sample of utterances.

    python local/sample_cmvn.py DATA_DIR OUT.npz [N]

Unnormalised log-mel values (silence near -15, speech near +5) slow the small models' learning
down; a few hundred utterances pin the statistics down well enough.
"""
import random
import sys

from mslam.data.features import CMVNStats, load_features
from mslam.data.kaldi import DataDir


def main(data_dir: str, out: str, n: int = 800) -> None:
    d = DataDir(data_dir)
    ids = d.utt_ids
    random.Random(0).shuffle(ids)
    stats = CMVNStats(80)
    for utt in ids[:n]:
        stats.add(load_features(d.utterance(utt)))
    stats.save(out)
    print(f"sample_cmvn: {min(n, len(ids))} utterances of {data_dir} -> {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:]))
