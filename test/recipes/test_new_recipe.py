"""Adding a corpus the documented way (egs/TEMPLATE/README.md): setup.sh makes the skeleton, the author
writes local/download.sh and local/data.sh, and every shared stage runs to a scored result: a corpus
served as an archive (LangID), and the README's worked example, a spoken-digit corpus already on disk
(intent), run on the CPU with no option at all."""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from mslam.data.kaldi import DataDir

REPO = Path(__file__).resolve().parents[2]
SETUP = REPO / "egs" / "TEMPLATE" / "setup.sh"

# What a corpus author writes for "tinytalk", a made-up LangID corpus served as one archive holding
# clips/<id>.wav and labels.tsv (id, language, speaker, split).
DOWNLOAD_SH = """#!/usr/bin/env bash
set -euo pipefail
langs=
checksums=
. ./path.sh
. ./db.sh
. "$MAIN_ROOT/tools/parse_options.sh"
python -m mslam.bin.download --base-url "$TINYTALK_URL" --out "$TINYTALK" --no-progress tinytalk.tar.gz
"""
DATA_SH = """#!/usr/bin/env bash
set -euo pipefail
langs=
data=data
nj=4
. ./path.sh
. ./db.sh
. "$MAIN_ROOT/tools/parse_options.sh"
[ -f "$TINYTALK/labels.tsv" ] || tar -xzf "$TINYTALK/tinytalk.tar.gz" -C "$TINYTALK"
python - "$TINYTALK" "$data" "$langs" <<'EOF'
import sys
from pathlib import Path
from mslam.data.kaldi import Utterance, write_data_dir
root, data, langs = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3].split()
splits = {}
for line in (root / "labels.tsv").read_text().splitlines():
    utt, lang, speaker, split = line.split("\\t")
    if not langs or lang in langs:
        wav = str(root / "clips" / f"{utt}.wav")
        splits.setdefault(split, []).append(Utterance(id=utt, wav=wav, speaker=speaker, lang=lang))
for split, utts in splits.items():
    write_data_dir(data / split, utts)
EOF
"""


def make_tinytalk(corpus: Path, server: Path) -> set[str]:
    """The made-up corpus's archive, built from the toy corpus's LangID utterances; returns its languages."""
    members, labels = {}, []
    for split in ("train", "dev", "test"):
        d = DataDir(corpus / "langid" / split)
        for utt in d:
            members[f"clips/{utt.id}.wav"] = Path(utt.wav).read_bytes()
            labels.append(f"{utt.id}\t{utt.lang}\t{utt.speaker}\t{split}\n")
    members["labels.tsv"] = "".join(labels).encode()
    server.mkdir(parents=True)
    with tarfile.open(server / "tinytalk.tar.gz", "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return {line.split("\t")[1] for line in labels}


@pytest.mark.slow
def test_setup_sh_then_a_small_local_data_sh_runs_every_stage_to_a_score(mini_corpus, tmp_path):
    langs = make_tinytalk(mini_corpus, tmp_path / "server")
    recipe = tmp_path / "egs" / "tinytalk" / "lid1"
    r = subprocess.run(["bash", str(SETUP), str(recipe), "--task", "langid"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for link in ("path.sh", "cmd.sh", "finetune.sh"):
        assert (recipe / link).is_symlink() and (recipe / link).resolve().parent == SETUP.parent
    # The corpus's path is the recipe's own setting (set here from the environment).
    assert not (recipe / "db.sh").is_symlink() and "TINYTALK=${TINYTALK:-" in (recipe / "db.sh").read_text()
    env = {**os.environ, "TINYTALK": str(tmp_path / "downloads"), "TINYTALK_URL": f"file://{tmp_path / 'server'}",
           "CUDA_VISIBLE_DEVICES": ""}

    # Until local/ is written, the recipe stops at once and says what is missing.
    r = subprocess.run([str(recipe / "run.sh")], capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "stage 1 (download) failed" in r.stderr and "not written yet" in r.stderr

    (recipe / "local" / "download.sh").write_text(DOWNLOAD_SH)
    (recipe / "local" / "data.sh").write_text(DATA_SH)
    r = subprocess.run([str(recipe / "run.sh")], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for n in range(1, 8):
        assert f"stage {n}: finished in" in r.stdout
    test = DataDir(recipe / "data" / "test")
    hyp = dict(line.split(maxsplit=1) for line in (recipe / "exp" / "tiny" / "decode_test" / "hyp").read_text().splitlines())
    assert set(hyp) == set(test.utt_ids) and set(hyp.values()) <= langs
    assert "| Model | tinytalk LangID acc. |" in (recipe / "exp" / "RESULTS.md").read_text()
    assert "| tiny |" in (recipe / "exp" / "RESULTS.md").read_text()
    # setup.sh will not overwrite a recipe
    r = subprocess.run(["bash", str(SETUP), str(recipe), "--task", "langid"], capture_output=True, text=True)
    assert r.returncode != 0 and "already exists" in r.stderr


# --------------------------------------------------------------------------- the README's worked example
# Telephone keypad (DTMF) tone pairs: 8 kHz "spoken digits" that a tiny model learns in seconds, which
# speech does not; the recipe's scripts see only file names and audio, as with a real corpus.
DTMF = {"1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "4": (770, 1209), "5": (770, 1336),
        "6": (770, 1477), "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "0": (941, 1336)}
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")   # six, as in the FSDD
RATE = 8000


def make_digit_corpus(root: Path, takes: int = 2, seed: int = 0) -> None:
    """<digit>_<speaker>_<n>.wav at 8 kHz: each digit its tone pair; each speaker detuned (up to 2%, a
    third of the gap between neighbouring tones), at their own level, noise and pace."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    for speaker in SPEAKERS:
        detune, level, noise = rng.uniform(0.98, 1.02), rng.uniform(0.1, 0.4), rng.uniform(0.002, 0.02)
        for digit, (low, high) in DTMF.items():
            for take in range(takes):
                t = np.arange(int(RATE * rng.uniform(0.2, 0.4))) / RATE
                f = detune * rng.uniform(0.997, 1.003)
                tone = level * (np.sin(2 * np.pi * low * f * t) + np.sin(2 * np.pi * high * f * t)) / 2
                pause = np.zeros(int(RATE * rng.uniform(0.05, 0.15)))
                wave = np.concatenate([pause, tone, pause])
                wave += noise * rng.standard_normal(wave.size)
                soundfile.write(root / f"{digit}_{speaker}_{take}.wav", wave.astype(np.float32), RATE,
                                subtype="PCM_16")


def readme_scripts() -> dict[str, str]:
    """The worked example's scripts exactly as egs/TEMPLATE/README.md shows them (```bash <path> blocks)."""
    text = (SETUP.parent / "README.md").read_text()
    return dict(re.findall(r"^```bash (\S+)\n(.*?)^```$", text, re.M | re.S))


@pytest.mark.slow
def test_readme_example_a_digit_corpus_on_disk_runs_every_stage_on_cpu_with_no_options(tmp_path):
    corpus = tmp_path / "free-spoken-digit-dataset" / "recordings"
    make_digit_corpus(corpus)
    recipe = tmp_path / "egs" / "digits" / "ic1"
    shared_db = (SETUP.parent / "db.sh").read_bytes()
    r = subprocess.run(["bash", str(SETUP), str(recipe), "--task", "intent"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

    # The generated configs hold only what an intent task reads.
    for conf in ("intent.yaml", "tuning/tiny.yaml"):
        cfg = yaml.safe_load((recipe / "conf" / conf).read_text())
        assert not {"decoder", "rnnt", "asr_decoder"} & set(cfg.get("head") or {}), conf
        assert "spm_vocab_size" not in cfg.get("data", {}) and "decode" not in cfg, conf
    assert "CHANGE" in (recipe / "conf" / "intent.yaml").read_text()

    # What the README says a user does: the corpus path in the recipe's own db.sh, its two local scripts.
    db = recipe / "db.sh"
    default = "DIGITS=${DIGITS:-$CORPORA_ROOT/digits}"
    assert not db.is_symlink() and default in db.read_text()
    db.write_text(db.read_text().replace(default, f"DIGITS=${{DIGITS:-{corpus}}}"))
    scripts = readme_scripts()
    assert set(scripts) == {"local/download.sh", "local/data.sh"}
    for path, script in scripts.items():
        (recipe / path).write_text(script)

    # No option at all; on the CPU (a GPU there would be used, --ngpu auto: hidden here).
    env = {k: v for k, v in os.environ.items() if k != "DIGITS"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    r = subprocess.run([str(recipe / "run.sh")], capture_output=True, text=True, env=env, timeout=600)
    out = r.stdout
    assert r.returncode == 0, out[-3000:] + r.stderr[-3000:]
    for n in range(1, 8):
        assert f"stage {n}: finished in" in out
    assert "--ngpu auto: 0 GPU(s) on this machine" in out
    assert re.search(r"stage 3: note: .*audio at 8000 Hz .* resampled to 16000 Hz", out)
    assert (recipe / "dump" / "fbank" / "train" / "feats.scp").is_file()

    # Speakers held out whole; the recipe's names in its table; better than chance on unseen voices.
    speakers = {s: set(DataDir(recipe / "data" / s).tables["utt2spk"].values()) for s in ("train", "dev", "test")}
    assert len(speakers["test"]) == 2 and len(speakers["dev"]) == 1
    assert not (speakers["train"] & speakers["test"]) and not (speakers["train"] & speakers["dev"])
    table = (recipe / "exp" / "RESULTS.md").read_text()
    assert "| Model | digits intent acc. |" in table and re.search(r"^\| tiny \| [0-9.]+ \|$", table, re.M), table
    scores = json.loads((recipe / "exp" / "tiny" / "decode_test" / "scores.json").read_text())
    assert scores["accuracy"] >= 50 > scores["majority_accuracy"], scores     # chance: 10%
    # and nothing shared was edited
    assert (SETUP.parent / "db.sh").read_bytes() == shared_db


def test_device_and_feature_errors_name_the_recipe_flag_to_change(tmp_path):
    recipe = tmp_path / "egs" / "digits" / "ic1"
    assert subprocess.run(["bash", str(SETUP), str(recipe), "--task", "intent"], capture_output=True).returncode == 0
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}   # a machine without GPUs, whatever this one has

    def run(*args: str, **extra: str) -> str:
        r = subprocess.run([str(recipe / "run.sh"), *args], capture_output=True, text=True, env={**env, **extra})
        assert r.returncode == 1, r.stdout + r.stderr
        return r.stderr

    # Checked before training starts (stage 5), not deep inside it; data stages run with any --ngpu.
    assert "--ngpu 2, but this machine has 0 usable GPU(s); use --ngpu auto" in run("--stage", "5", "--feats-type",
                                                                                      "raw", "--ngpu", "2")
    assert "give the GPUs per job: --ngpu N" in run("--stage", "5", "--feats-type", "raw", MSLAM_CMD_BACKEND="slurm")
    assert "--ngpu 'two' is not a number of GPUs" in run("--ngpu", "two")
    assert "--feats-type must be fbank" in run("--feats-type", "mfcc")
    assert "has no dumped features; run the feature stage (--stage 3)" in run("--stage", "4")
