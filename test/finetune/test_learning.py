"""Fine-tuning learns: each task, trained from scratch for a fixed number of steps on few labels of
the toy corpus, is scored on held-out voices and must beat what a constant output scores by a
stated margin. A broken split (one voice to train on), a frozen or collapsed encoder, or a head that
outputs one class would each miss these figures. `pytest -k learn` runs them.

The corpus is the toy corpus at size `learn` (~3k utterances, ~15 s to make); the few-label sets are
drawn with `subset_data_dir(per_lang=...)`, as egs/mini's stage 2 draws them, and must span every
voice of their split; with the old "first N" subset the fixture fails (the tests themselves, trained
on 3-5 of the 8 voices, still passed: the learn corpus has few utterances per speaker).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from mslam.bin.decode import decode
from mslam.bin.score import score
from mslam.data.kaldi import DataDir, subset_data_dir
from mslam.data.mini_corpus import VOICES
from mslam.scoring.tables import baseline_score
from mslam.tasks.finetune import finetune, load_finetune_config

pytestmark = pytest.mark.slow

# A small encoder (0.5 M parameters): 40 ms frames, one speech and two shared Conformer layers.
LEARN_MODEL = {"vocab_size": 512, "frontend": {"conv_channels": 16},
               "encoder": {"d_model": 96, "ffn_dim": 384, "heads": 4, "speech_layers": 1, "shared_layers": 2,
                           "conv_norm_groups": 8, "dropout": 0.1}}
# Few labels per language (and the languages) of each task's training set; test sets from held-out voices.
SETS = {
    "langid": {"langs": ["en", "de", "ru", "ar"], "train": 60, "test": 30},
    "intent": {"langs": ["en", "de"], "train": 120, "test": 48},
    "asr": {"langs": ["es"], "train": 150, "test": 40},
    "st": {"langs": ["de", "fr", "es"], "train": 270, "test": 30},
}


@pytest.fixture(scope="module")
def learn_corpus(tmp_path_factory) -> Path:
    from mslam.bin.build_char_vocab import main as build_char_vocab
    from mslam.bin.compute_cmvn import main as compute_cmvn
    from mslam.data.mini_corpus import generate
    out = tmp_path_factory.mktemp("learn") / "corpus"
    generate(out, size="learn", seed=0, nj=2)
    for task, s in SETS.items():
        for split, n in (("train", s["train"]), ("test", s["test"])):
            subset_data_dir(out / task / split, out / task / f"{split}_few", per_lang=n, langs=s["langs"], seed=0)
            # the premise of every test here: each language's few-label set spans every voice of its
            # split (a "first N" cut of these speaker-sorted dirs held 3-5 of the 8 training voices)
            assert voices_per_language(out / task / f"{split}_few") == {lang: set(VOICES[split]) for lang in s["langs"]}
    assert build_char_vocab(["--text-shards", str(out / "text_shards/train"), "--data-dirs", str(out / "asr/train"),
                             "--out", str(out / "chars.txt")]) == 0
    assert compute_cmvn([str(out / "speech/train"), str(out / "cmvn.npz"), "--max-utts", "300", "--no-progress"]) == 0
    return out


def voices_per_language(data: Path) -> dict[str, set[str]]:
    """The espeak-ng voices of each language's speakers ('de-m3-p1s2': voice m3)."""
    d = DataDir(data)
    voices: dict[str, set[str]] = {}
    for utt, speaker in d.tables["utt2spk"].items():
        voices.setdefault(d.tables["utt2lang"][utt], set()).add(speaker.split("-")[1])
    return voices


def train_and_score(corpus: Path, out: Path, task: str, steps: int, init: Path | None = None, **sets) -> dict:
    """Fine-tune from scratch (or from the pre-training run `init`) on TASK/train_few, decode
    TASK/test_few (held-out voices), score it."""
    config = {"task": task, "init": str(init) if init else None, "model": LEARN_MODEL, "spec_augment": None,
              "regularization": {"start_step": steps},  # dropout off: these runs are short
              "head": {"asr_decoder": "ctc", "classifier_dropout": 0.0,
                       "decoder": {"layers": 1, "d_model": 96, "heads": 4, "ffn_dim": 384, "dropout": 0.1,
                                   "label_smoothing": 0.1}},
              "data": {"root": str(corpus), "cmvn": "cmvn.npz", "train": [f"{task}/train_few"], "num_workers": 0,
                       "spm_vocab_size": 60, "batch": {"batch_frames": 3000, "max_frames": 2000}},
              "optim": {"encoder_lr": 1e-3, "encoder_warmup": 30, "head_lr": 2e-3, "head_warmup": 30},
              "trainer": {"max_steps": steps, "save_every": steps, "average_best": 1, "log_every": 10,
                          "device": "cpu", "tensorboard": False},
              "decode": {"method": "greedy"}}
    cfg = load_finetune_config(config, [f"{k.replace('__', '.')}={v}" for k, v in sets.items()])
    finetune(cfg, out / task, progress_bar=False)
    test = corpus / task / "test_few"
    decode(out / task, test, out / task / "decode", progress=False)
    return score(task, test, out / task / "decode" / "hyp", groups={})


def test_langid_learns_on_held_out_voices(learn_corpus, tmp_path):
    s = train_and_score(learn_corpus, tmp_path, "langid", steps=150)
    assert baseline_score(s) < 30.0                                  # 4 languages, one with fewer tests
    assert s["accuracy"] >= 65.0, s["accuracy"]                     # measured: 78%
    # every language is predicted for some utterance: not a constant head
    assert len({c for row in s["confusion"] for c, n in enumerate(row) if n}) == len(SETS["langid"]["langs"])


# w2v-bert: at 300 steps masked prediction was 0.235 against 0.216 for the commonest target on a freshly
# generated corpus (under the 0.03 margin); at 450, 0.317 against 0.275
PRETRAIN_STEPS = {"w2v-bert": 450, "mslam-ctc": 300}


@pytest.fixture(scope="module")
def pretrained(learn_corpus, tmp_path_factory):
    """variant -> the run dir of PRETRAIN_STEPS[variant] steps of pre-training of the learning tests' encoder
    (the `tiny` objective, which follows egs/mini's `mini`), with the collapse monitor on held-out voices."""
    from mslam.tasks.pretrain import load_pretrain_config
    from mslam.train.trainer import pretrain
    runs: dict[str, Path] = {}

    def run(variant: str) -> Path:
        # mSLAM-CTC: its text and paired losses at 0.3 (at 1.0 the speech MLM stayed at the commonest
        # target's accuracy for 300 steps; not measured on egs/mini), smaller text and paired batches (time)
        joint = ["objective.weights.text=0.3", "objective.weights.paired=0.3",
                 "data.text={dirs: [text_shards/train], batch_chars: 400}",
                 "data.paired={dirs: [asr/train], batch_frames: 700}"] if variant == "mslam-ctc" else []
        steps = PRETRAIN_STEPS[variant]
        if variant not in runs:
            out = tmp_path_factory.mktemp(f"pretrain-{variant}")
            model = [f"model.{k}={v}" for k, v in LEARN_MODEL.items()]
            pretrain(load_pretrain_config("tiny", [
                f"objective.variant={variant}", f"data.root={learn_corpus}", "data.vocab=chars.txt",
                "data.cmvn=cmvn.npz", *model, "data.speech={dirs: [speech/train], batch_frames: 3000}",
                "data.num_workers=0", "optim.peak_lr=1e-3", "optim.warmup_steps=50", f"trainer.max_steps={steps}",
                f"trainer.save_every={steps}", "trainer.tensorboard=false", "trainer.device=cpu",
                f"monitor.every={steps}", "monitor.data=speech/dev", "monitor.utterances=64", *joint]),
                out, progress_bar=False)
            runs[variant] = out
        return runs[variant]
    return run


@pytest.mark.parametrize("variant", ["w2v-bert", "mslam-ctc"])
def test_pretraining_learns_without_collapse(pretrained, variant):
    """The Gumbel objective of the paper at this scale: with the old quantiser (unit-variance logits over the
    raw front-end output) and the paper's 0.065 x 10 masks, the held-out spreads fell to 2-5% of their
    initial values within 100 steps and masked prediction stayed at the commonest target's accuracy."""
    from mslam.train.progress import read_json_log
    last = read_json_log(pretrained(variant) / "dev.jsonl")[-1]
    assert last["step"] == PRETRAIN_STEPS[variant]
    assert last["utterance_spread_ratio"] >= 0.5 and last["frame_spread_ratio"] >= 0.5, last
    assert not last["collapsed"]
    assert last["w2v_mlm_acc"] >= last["w2v_mlm_majority_acc"] + 0.03, last


def test_langid_learns_after_pretraining(learn_corpus, pretrained, tmp_path):
    """The pre-trained path: mSLAM-CTC pre-training of the same encoder, then the same fine-tuning."""
    s = train_and_score(learn_corpus, tmp_path, "langid", steps=150, init=pretrained("mslam-ctc"))
    assert s["accuracy"] >= 65.0, s["accuracy"]


def test_intent_learns_on_held_out_voices(learn_corpus, tmp_path):
    s = train_and_score(learn_corpus, tmp_path, "intent", steps=200)
    assert baseline_score(s) == pytest.approx(100 / 6)              # six intents, balanced
    assert s["accuracy"] >= 60.0, s["accuracy"]                     # measured: 73% (300 steps: 86%)


def test_ctc_asr_learns_on_held_out_voices(learn_corpus, tmp_path):
    s = train_and_score(learn_corpus, tmp_path, "asr", steps=220)
    # all-blank output (CTC's plateau) or any constant string: CER >= ~100%
    assert s["average"]["cer"] <= 50.0, s["average"]                 # measured: CER 14%


def test_st_learns_on_held_out_voices(learn_corpus, tmp_path):
    """Speech-only ST with the auxiliary CTC on the source transcript: without it, or with the decoder's
    token embeddings at N(0, 1), the decoder learned fluent English that ignored the audio (BLEU 1-6
    against 10.6 for the best constant output)."""
    s = train_and_score(learn_corpus, tmp_path, "st", steps=600, head__st_ctc_weight=0.3)
    constant = s["constant_baseline"]["bleu_all"]
    assert s["groups"]["all"] >= constant + 8.0, (s["groups"]["all"], s["constant_baseline"])  # measured: 25 vs 11
    assert s["distinct_hypotheses"] >= len(DataDir(learn_corpus / "st/test_few").utt_ids) // 3  # measured: 43 of 90
