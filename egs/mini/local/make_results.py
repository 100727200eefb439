"""Write RESULTS.md for egs/mini: environment, command, then the paper's tables in miniature and plots.

    python local/make_results.py --exp exp --data data --out RESULTS.md --plots exp/plots \
        --models "none w2v-bert mslam-tlm mslam-ctc" --size small --command "./run.sh"

Reads exp/pretrain_<variant>/train.jsonl and exp/finetune/<model>/<task>/decode_{test,mt}/scores.json;
a run that is missing shows as "-".
"""
import argparse
import datetime
import json
import platform
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import torch  # noqa: E402

from mslam.bin.pretrain_report import pretraining_section  # noqa: E402
from mslam.scoring.plots import bar_chart  # noqa: E402
from mslam.scoring.tables import cls_table, markdown_table, st_table, zeroshot_table  # noqa: E402

NAMES = {"none": "no pre-training", "w2v-bert": "w2v-bert (speech only)", "mslam-tlm": "mSLAM-TLM",
         "mslam-ctc": "mSLAM-CTC"}


def load(path: Path):
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def environment(size: str, data: Path) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "unknown"
    summary = load(data / "summary.json") or {}
    return "\n".join([
        f"- date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        f"- machine: {cpu}, {torch.get_num_threads()} threads; python {platform.python_version()}, "
        f"torch {torch.__version__}",
        f"- mslam commit: {commit}",
        f"- corpus: size {size}, seed {summary.get('seed', '?')}, espeak-ng engine {summary.get('espeak_engine', '?')}",
    ])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--exp", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--plots", required=True)
    p.add_argument("--models", required=True)
    p.add_argument("--size", default="small")
    p.add_argument("--command", default="./run.sh")
    args = p.parse_args()
    exp, plots, models = Path(args.exp), Path(args.plots), args.models.split()
    plots.mkdir(parents=True, exist_ok=True)

    def scores(model, task, which="decode_test"):
        return load(exp / "finetune" / model / task / which / "scores.json")

    st = {NAMES[m]: s for m in models if (s := scores(m, "st"))}
    joint = {NAMES[m]: s for m in models if (s := scores(m, "st_joint"))}
    zeroshot = {NAMES[m]: s for m in models if (s := scores(m, "st", "decode_mt"))}
    joint_mt = {NAMES[m]: s for m in models if (s := scores(m, "st_joint", "decode_mt"))}
    asr = {NAMES[m]: s for m in models if (s := scores(m, "asr"))}
    cls = {NAMES[m]: {t: s for t in ("intent", "langid") if (s := scores(m, t))} for m in models}
    asr_rows = [[name, s["average"]["wer"], s["average"]["cer"],
                 *(s["languages"][lang]["cer"] for lang in sorted(s["languages"]))] for name, s in asr.items()]
    asr_langs = sorted(next(iter(asr.values()))["languages"]) if asr else []

    chart = {"ST BLEU": {n: s["groups"]["all"] for n, s in st.items()},
             "ST+MT BLEU": {n: s["groups"]["all"] for n, s in joint.items()},
             "zero-shot BLEU": {n: s["groups"]["all"] for n, s in zeroshot.items()},
             "ASR CER": {n: s["average"]["cer"] for n, s in asr.items()},
             "intent acc.": {n: c["intent"]["accuracy"] for n, c in cls.items() if "intent" in c},
             "LangID acc.": {n: c["langid"]["accuracy"] for n, c in cls.items() if "langid" in c}}
    bar_chart(chart, plots / "tables.png", "BLEU / CER % / accuracy %", "egs/mini: every task, every encoder")

    probes = load(exp / "probe.json") or {}
    probe_tables = [f"{task}:\n\n" + markdown_table(
        ["Model", "front end", *(f"layer {i}" for i in range(1, len(next(iter(rows.values())))))],
        [[NAMES[m], *accs] for m, accs in rows.items() if m in NAMES]) for task, rows in probes.items() if rows]

    sections = [
        "# egs/mini: results\n",
        "The paper's tables in miniature, on the offline toy corpus (espeak-ng speech, num2words text), "
        "with small encoders and few labels. Every number below was measured by the run that wrote this "
        "file; see README.md for what the corpus is and what it can and cannot show.\n",
        "## Environment\n", environment(args.size, Path(args.data)) + "\n",
        "## Command\n", f"```\n{args.command.strip()}\n```\n",
        "## Pre-training (same steps and speech batch for each encoder)\n", pretraining_section({NAMES[m]: exp / f"pretrain_{m}" for m in models if m != "none"},
                            plots / "pretrain_loss.png"),
        "## Speech translation X -> En, BLEU (the CoVoST 2 table)\n",
        "Groups for the toy corpus (conf/st_groups.json): high de fr es, mid it ru pt pl, low nl cs sv uk ar he "
        "(by hours of speech per language in pre-training).\n",
        "### Speech-only fine-tuning\n", st_table(st) if st else "missing\n",
        "### Joint ST + MT fine-tuning\n", st_table(joint) if joint else "missing\n",
        "## ASR: average WER and CER %, and CER per language\n",
        markdown_table(["Model", "avg. WER", "avg. CER", *(f"CER {lang}" for lang in asr_langs)], asr_rows)
        if asr else "missing\n",
        "## Intent and LangID accuracy %\n", cls_table(cls, {"intent": "intent acc. (MINDS-14 style)",
                                                           "langid": "LangID acc. (FLEURS style)"}),
        "## Linear probes of the frozen encoders, accuracy %\n",
        "Before any fine-tuning: each layer's output mean-pooled over time, a logistic regression fitted on "
        "the few-label training set and scored on the test set (held-out voices; `local/probe_encoders.py`). "
        "It shows whether pre-training made the label easier to read off a layer than the random "
        "initialisation does.\n",
        "\n".join(probe_tables) if probe_tables else "missing\n",
        "## Zero-shot text translation, BLEU (text -> En with the speech-only ST model)\n",
        zeroshot_table(zeroshot) if zeroshot else "missing\n",
        "For reference, the joint ST+MT models (which saw MT data) on the same text:\n",
        zeroshot_table(joint_mt) if joint_mt else "missing\n",
        "## Plots\n", f"![all tables]({plots.as_posix()}/tables.png)\n",
    ]
    Path(args.out).write_text("\n".join(sections), encoding="utf-8")
    print(f"make_results: wrote {args.out} and {plots}/")


if __name__ == "__main__":
    main()
