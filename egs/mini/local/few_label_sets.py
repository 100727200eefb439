"""Few-label fine-tuning sets and small evaluation sets of the toy corpus (subsets per language).

    python local/few_label_sets.py DATA LABELS_PER_LANG

Pre-training pays off with few labels (egs/mini/README.md), so every task fine-tunes on
LABELS_PER_LANG utterances per language (intent: half, with 6 intents x 8 languages; ST: 60%, as 13
languages share one decoder). Dev and test sets are cut down to keep decoding on a CPU short; they
keep their held-out voices and numbers. Every set is a seeded random draw spread evenly over the
speakers of each language (`subset_data_dir(per_lang=...)`), so a few-label set holds many voices and
a test set every test voice; train, dev and test voices are disjoint by the corpus's design.
"""
import sys

from mslam.data.kaldi import subset_data_dir

TEST_PER_LANG = {"asr": 30, "st": 15, "intent": 24, "langid": 30, "mt": 15}
DEV_PER_LANG = 10


def main(data: str, labels_per_lang: int) -> None:
    train_share = {"asr": 1.0, "st": 0.6, "intent": 0.5, "langid": 1.0}
    for task, share in train_share.items():
        n = subset_data_dir(f"{data}/{task}/train", f"{data}/{task}/train_few",
                            per_lang=max(1, int(labels_per_lang * share)), seed=0)
        d = subset_data_dir(f"{data}/{task}/dev", f"{data}/{task}/dev_few", per_lang=DEV_PER_LANG, seed=0)
        print(f"{task}: {n} training utterances, {d} dev")
    for task, per_lang in TEST_PER_LANG.items():
        n = subset_data_dir(f"{data}/{task}/test", f"{data}/{task}/test_few", per_lang=per_lang, seed=0)
        print(f"{task}: {n} test utterances")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
