"""Adding a corpus the documented way (egs/TEMPLATE/README.md): setup.sh makes the skeleton, the author
writes local/download.sh and local/data.sh, and every shared stage runs to a scored result."""
from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

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
    for link in ("path.sh", "cmd.sh", "db.sh", "finetune.sh"):
        assert (recipe / link).is_symlink() and (recipe / link).resolve().parent == SETUP.parent
    env = {**os.environ, "TINYTALK": str(tmp_path / "downloads"), "TINYTALK_URL": f"file://{tmp_path / 'server'}"}

    # Until local/ is written, the recipe stops at once and says what is missing.
    r = subprocess.run([str(recipe / "run.sh"), "--ngpu", "0"], capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "stage 1 (download) failed" in r.stderr and "not written yet" in r.stderr

    (recipe / "local" / "download.sh").write_text(DOWNLOAD_SH)
    (recipe / "local" / "data.sh").write_text(DATA_SH)
    r = subprocess.run([str(recipe / "run.sh"), "--ngpu", "0"], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for n in range(1, 8):
        assert f"stage {n}: finished in" in r.stdout
    test = DataDir(recipe / "data" / "test")
    hyp = dict(line.split(maxsplit=1) for line in (recipe / "exp" / "tiny" / "decode_test" / "hyp").read_text().splitlines())
    assert set(hyp) == set(test.utt_ids) and set(hyp.values()) <= langs
    assert "| tiny |" in (recipe / "exp" / "RESULTS.md").read_text()
    # setup.sh will not overwrite a recipe
    r = subprocess.run(["bash", str(SETUP), str(recipe), "--task", "langid"], capture_output=True, text=True)
    assert r.returncode != 0 and "already exists" in r.stderr
