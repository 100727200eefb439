"""Every corpus recipe, every stage, on the download fixture archives (no network): download from a
file:// copy of each server's layout, data preparation, features (dumped, or on the fly) and
statistics, a few steps of a tiny model, decoding and scoring to RESULTS.md; then a rerun that does
nothing, --help, and a failing stage."""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from mslam.data.kaldi import DataDir

REPO = Path(__file__).resolve().parents[2]
EGS = REPO / "egs"
# What a test run passes to every fine-tuning recipe: from scratch, on CPU, the tiny config.
SCRATCH = ["--init", "", "--ngpu", "0", "--configs", "conf/tuning/tiny.yaml"]


def run(recipe: str, *args: str, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(EGS / recipe / "run.sh"), *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=timeout)


def ok(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, f"exit {r.returncode}\n--- stdout\n{r.stdout[-3000:]}\n--- stderr\n{r.stderr[-3000:]}"
    return r.stdout


def corpus_env(tree: Path, tmp: Path, *corpora: str) -> dict[str, str]:
    """db.sh's variables: each corpus downloaded from its fixture folder into tmp/downloads/<corpus>."""
    env = {}
    for corpus in corpora:
        var = corpus.upper()
        env[var] = str(tmp / "downloads" / corpus)
        env[f"{var}_URL"] = f"file://{tree / corpus}"
    return env


def checksums_of(tree: Path, tmp: Path, *corpora: str) -> Path:
    """The fixture manifest's sha256 of each file, in sha256sum format (paths under the URL base)."""
    files = json.loads((tree / "MANIFEST.json").read_text())["files"]
    lines = [f"{meta['sha256']}  {rel.split('/', 1)[1]}" for rel, meta in files.items() if rel.split("/")[0] in corpora]
    path = tmp / "SHA256SUMS"
    path.write_text("\n".join(lines) + "\n")
    return path


def stages_run(stdout: str) -> list[str]:
    return re.findall(r"^stage (\d+): finished in", stdout, re.M)


def assert_rerun_does_nothing(recipe: str, args: list[str], env: dict[str, str], results: Path) -> None:
    before = results.stat().st_mtime_ns
    out = ok(run(recipe, *args, env=env))
    assert stages_run(out) == [] and "done earlier" in out
    assert results.stat().st_mtime_ns == before


def scores(exp: Path, name: str = "tiny", test_set: str = "test") -> dict:
    return json.loads((exp / name / f"decode_{test_set}" / "scores.json").read_text())


def hyp_ids(exp: Path, name: str = "tiny") -> set[str]:
    return {line.split(maxsplit=1)[0] for line in (exp / name / "decode_test" / "hyp").read_text().splitlines()}


@pytest.mark.slow
def test_fleurs_langid_every_stage_then_a_rerun_that_does_nothing(fixture_tree, tmp_path):
    env = corpus_env(fixture_tree, tmp_path, "fleurs")
    data, exp, dump = tmp_path / "data", tmp_path / "exp", tmp_path / "dump"
    args = ["--langs", "de_de fr_fr ru_ru", *SCRATCH, "--data", str(data), "--exp", str(exp), "--dumpdir", str(dump),
            "--checksums", str(checksums_of(fixture_tree, tmp_path, "fleurs"))]
    out = ok(run("fleurs/lid1", *args, env=env))
    assert stages_run(out) == [str(n) for n in range(1, 8)]
    test = DataDir(data / "test").validate()
    assert set(test.tables["utt2lang"].values()) == {"de_de", "fr_fr", "ru_ru"}
    # features dumped once (the default), with the training set's statistics beside them
    assert DataDir(dump / "fbank" / "test").validate().utt_ids == test.utt_ids
    assert (dump / "fbank" / "train" / "cmvn.npz").is_file() and not (data / "train" / "cmvn.npz").exists()
    assert hyp_ids(exp) == set(test.utt_ids)          # every test utterance classified
    s = scores(exp)
    assert s["task"] == "langid" and 0 <= s["accuracy"] <= 100
    table = (exp / "RESULTS.md").read_text()
    assert "FLEURS LangID acc." in table and re.search(r"^\| tiny \|", table, re.M)
    assert_rerun_does_nothing("fleurs/lid1", args, env, exp / "RESULTS.md")


@pytest.mark.slow
def test_minds14_intent_every_stage(fixture_tree, tmp_path):
    env = corpus_env(fixture_tree, tmp_path, "minds14")
    data, exp = tmp_path / "data", tmp_path / "exp"
    out = ok(run("minds14/ic1", "--langs", "de-DE fr-FR it-IT", *SCRATCH, "--data", str(data), "--exp", str(exp),
                 "--dumpdir", str(tmp_path / "dump"), env=env))
    assert stages_run(out) == [str(n) for n in range(1, 8)]
    labels = (exp / "tiny" / "tokens" / "labels.txt").read_text().split()
    assert set(labels) == set(DataDir(data / "train").tables["utt2intent"].values())
    assert hyp_ids(exp) == set(DataDir(data / "test").utt_ids)
    assert scores(exp)["task"] == "intent"
    assert "| Model | MINDS-14 intent acc. |" in (exp / "RESULTS.md").read_text()


@pytest.mark.slow
def test_covost2_speech_only_and_joint_st_to_the_bleu_table(fixture_tree, tmp_path):
    env = corpus_env(fixture_tree, tmp_path, "commonvoice", "covost2")
    data, exp = tmp_path / "data", tmp_path / "exp"
    configs = "conf/tuning/tiny.yaml conf/tuning/tiny_joint.yaml"
    out = ok(run("covost2/st1", "--langs", "de fr es", "--init", "", "--ngpu", "0", "--configs", configs,
                 "--data", str(data), "--exp", str(exp), "--dumpdir", str(tmp_path / "dump"), env=env))
    assert stages_run(out) == [str(n) for n in [1, 2, 3, 4, 5, 6, 7, 4, 5, 6, 7]]
    assert json.loads((data / "groups.json").read_text())["high"] == ["fr", "de", "es", "ca"]
    for name in ("tiny", "tiny_joint"):
        s = scores(exp, name)
        assert s["task"] == "st" and {"high", "all"} <= set(s["groups"]), s
        assert hyp_ids(exp, name) == set(DataDir(data / "test").utt_ids)
    # the joint run trains on text too: its MT loss is logged, the speech-only run's is not
    last = {name: json.loads((exp / name / "train.jsonl").read_text().splitlines()[-1]) for name in ("tiny", "tiny_joint")}
    assert "mt" in last["tiny_joint"] and "mt" not in last["tiny"]
    rows = (exp / "RESULTS.md").read_text()
    assert "| CoVoST 2 X -> English (BLEU) | high | mid | low | all |" in rows
    assert "| tiny |" in rows and "| tiny_joint |" in rows


@pytest.mark.slow
def test_mc4_text_then_joint_pretraining_then_asr_from_the_pretrained_encoder(fixture_tree, tmp_path):
    """The paper's pipeline in order: mC4 text (egs/mc4/text1) + VoxPopuli speech -> pre-training
    (egs/voxpopuli/pt1) -> ASR fine-tuning with --init (egs/voxpopuli/asr1)."""
    env = {**corpus_env(fixture_tree, tmp_path, "mc4", "voxpopuli"), "MC4_TEXT": str(tmp_path / "text" / "text")}
    vox = ["--langs", "de fr pl", "--local-opts", "--years 2019,2020"]
    out = ok(run("mc4/text1", "--langs", "de ru ar", "--data", str(tmp_path / "text"), "--exp",
                 str(tmp_path / "exp_text"), env=env))
    assert stages_run(out) == ["1", "2", "3"]
    assert sorted(p.name for p in (tmp_path / "text" / "text" / "train").iterdir()) == ["ar.txt", "de.txt", "ru.txt"]

    # Pre-training from dumped features (the template's default is raw), as a named run.
    pt_exp, pt_dump = tmp_path / "exp_pt", tmp_path / "dump_pt"
    out = ok(run("voxpopuli/pt1", *vox, "--pretrain-config", "conf/tuning/tiny.yaml", "--ngpu", "0",
                 "--feats-type", "fbank", "--tag", "ctc", "--data", str(tmp_path / "data_pt"), "--exp", str(pt_exp),
                 "--dumpdir", str(pt_dump), env=env))
    assert stages_run(out) == [str(n) for n in range(1, 7)]
    assert (pt_dump / "fbank" / "speech" / "train" / "feats.scp").is_file()
    assert (pt_dump / "fbank" / "paired" / "train" / "feats.scp").is_file()
    run_dir = pt_exp / "pretrain_ctc"
    assert (run_dir / "chars.txt").is_file() and (run_dir / "cmvn.npz").is_file()
    # Stage 4 converted every set to a shard set (the default --data-format), and training read those.
    assert (pt_dump / "shards" / "speech" / "train" / "index.json").is_file()
    run_data = yaml.safe_load((run_dir / "config.yaml").read_text())["data"]
    assert {run_data[s]["format"] for s in ("speech", "text", "paired")} == {"shards"}
    assert run_data["text"]["dirs"] == [str(pt_dump / "shards" / "text" / "train")]
    log = [json.loads(line) for line in (run_dir / "train.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 3 and {"w2v_mlm", "text_mlm", "tlm_text", "ctc"} <= set(log[-1])
    assert "| ctc | 3 |" in (pt_exp / "RESULTS.md").read_text() and (pt_exp / "pretrain_loss.png").stat().st_size

    data, exp = tmp_path / "data_asr", tmp_path / "exp_asr"
    # Fine-tuning on features computed on the fly (--feats-type raw): nothing dumped.
    out = ok(run("voxpopuli/asr1", *vox, "--init", str(run_dir), "--ngpu", "0", "--configs", "conf/tuning/tiny.yaml",
                 "--feats-type", "raw", "--data", str(data), "--exp", str(exp), "--dumpdir", str(tmp_path / "dump"),
                 env=env))
    assert stages_run(out) == [str(n) for n in range(1, 8)]
    assert "stage 3: using " + str(run_dir / "cmvn.npz") in out    # the encoder's own statistics, not new ones
    assert not (data / "train" / "cmvn.npz").exists() and not (tmp_path / "dump").exists()
    assert set(DataDir(data / "test").tables["utt2lang"].values()) == {"de", "fr", "pl"}
    s = scores(exp)
    assert s["task"] == "asr" and set(s["languages"]) == {"de", "fr", "pl"} and 0 <= s["average"]["wer"]
    assert "| Model (VoxPopuli avg. WER %) | test |" in (exp / "RESULTS.md").read_text()
    assert "| tiny |" in (exp / "RESULTS.md").read_text()


# recipe, corpora, --langs, --local-opts: the fixture's languages
JOB_ARRAY_RECIPES = [("fleurs/lid1", ["fleurs"], "de_de fr_fr ru_ru", ""),
                     ("covost2/st1", ["commonvoice", "covost2"], "de fr es", ""),
                     ("voxpopuli/asr1", ["voxpopuli"], "de fr pl", "--years 2019,2020")]


@pytest.mark.parametrize("recipe,corpora,langs,local_opts", JOB_ARRAY_RECIPES)
def test_stage_2_prepares_the_languages_as_a_job_array_then_merges(fixture_tree, tmp_path, recipe, corpora, langs,
                                                                   local_opts):
    env = corpus_env(fixture_tree, tmp_path, *corpora)
    data, exp = tmp_path / "data", tmp_path / "exp"
    out = ok(run(recipe, "--langs", langs, "--local-opts", local_opts, "--stop-stage", "2", "--nj", "2",
                 "--data", str(data), "--exp", str(exp), env=env))
    assert stages_run(out) == ["1", "2"]
    first, second = ((data / "log" / f"prepare.{j}.log").read_text() for j in (1, 2))
    assert "part 1/2: shard(s) " in first and "part 2/2: shard(s) " in second
    assert "3 shard(s) done earlier, 0 to run" in (exp / "log" / "data.log").read_text()   # the merge
    assert set(DataDir(data / "test").validate().tables["utt2lang"].values()) == set(langs.split())
    assert not (tmp_path / "data.parts").exists()


def test_mc4_stage_2_reads_the_shards_as_a_job_array_then_writes(fixture_tree, tmp_path):
    env = corpus_env(fixture_tree, tmp_path, "mc4")
    data, exp = tmp_path / "data", tmp_path / "exp"
    args = ["--langs", "de ru ar", "--nj", "2", "--data", str(data), "--exp", str(exp)]
    ok(run("mc4/text1", *args, "--stop-stage", "2", env=env))
    first, second = ((exp / "log" / f"text.{j}.log").read_text() for j in (1, 2))
    assert "part 1/2: shard(s) de/train-00000 ru/train-00000 ar/train-00000 stamped" in first
    assert "part 2/2: shard(s) de/dev-00000 ru/dev-00000 ar/dev-00000 stamped" in second
    log = (exp / "log" / "text.log").read_text()
    assert "mc4: 6 shard(s) read earlier, 0 to read" in log and "3 of 3 languages made" in log
    assert sorted(p.name for p in (data / "text").iterdir()) == ["dev", "stats.json", "train"]   # no .work left
    # A cap has no shards to spread: one call, no job array.
    (exp / "log" / "text.1.log").unlink()
    ok(run("mc4/text1", *args, "--stage", "2", "--stop-stage", "2", "--max-sentences-per-lang", "2", env=env))
    assert "3 of 3 languages made" in (exp / "log" / "text.log").read_text()
    assert not (exp / "log" / "text.1.log").exists()


@pytest.mark.parametrize("recipe", ["fleurs/lid1", "minds14/ic1", "covost2/st1", "voxpopuli/asr1", "voxpopuli/pt1",
                                    "mc4/text1"])
def test_help_lists_the_stages_and_options(recipe, tmp_path):
    r = run(recipe, "--help", env={})
    assert r.returncode == 0, r.stderr
    text = r.stdout + r.stderr
    assert "Stages" in text and "--stage" in text and "--langs" in text


def test_a_failing_stage_stops_the_recipe_naming_the_stage_and_its_log(fixture_tree, tmp_path):
    # The fixture holds three MINDS-14 languages; the recipe's default is all fourteen.
    env = corpus_env(fixture_tree, tmp_path, "minds14")
    exp = tmp_path / "exp"
    r = run("minds14/ic1", *SCRATCH, "--data", str(tmp_path / "data"), "--exp", str(exp), env=env)
    assert r.returncode != 0
    log = exp / "log" / "data.log"
    assert f"stage 2 (data preparation) failed; see {log}" in r.stderr
    assert "cs-CZ" in r.stderr and "cs-CZ" in log.read_text()     # the cause, shown and kept
    assert (exp / ".stages" / "1.done").is_file() and not (exp / ".stages" / "2.done").exists()
