"""Dump 80-d log-mel features of data dirs to kaldiio ark/scp, in parallel jobs, with global CMVN stats.

    python -m mslam.bin.compute_fbank data/train dump/fbank/train --nj 4 [--cmd tools/run.pl]
    python -m mslam.bin.compute_fbank data/train dump/train data/dev dump/dev data/test dump/test --nj 4

Each output dir becomes a data dir: its input's tables plus feats.scp, utt2num_frames and cmvn.npz
(count, sum and sum of squares per dimension, over every utterance of that dir). Several input and
output pairs share one set of jobs: the utterances of all of them are cut into `--nj` jobs of at
least `--min-utts-per-job` utterances (a job's start-up, importing torch, costs seconds: a small dev
set is not worth a process of its own). Jobs are launched through `--cmd` (run.pl locally,
slurm.pl on a cluster); each writes its ark/scp atomically and logs to LOG_DIR/fbank.JOB.log, and
the driver merges them. Audio that cannot be used stops the run with the utterance named
(`--on-error fail`), or is skipped, counted and listed in OUT/bad_utts (`--on-error skip`).
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

# The driver only plans, launches and merges: torch (through the feature and audio modules) is
# imported by the jobs alone.
from mslam.data.cmvn import CMVNStats
from mslam.data.kaldi import DataDir, DataDirError, read_table, subset_data_dir, write_table

REPO_TOOLS = Path(__file__).resolve().parents[2] / "tools"
FEATURE_RATE = 16000  # FbankConfig().sample_rate (a test holds them equal; features.py would import torch)
JOB_FILES = ("feats.{}.scp", "utt2num_frames.{}", "cmvn.{}.npz", "bad_utts.{}")


def plan_jobs(utt_ids: list[list[str]], nj: int) -> list[list[tuple[int, list[str]]]]:
    """The utterances of every pair, in order, cut into `nj` contiguous slices: for each job, the
    (pair index, utterance ids) it computes."""
    flat = [(pair, utt) for pair, ids in enumerate(utt_ids) for utt in ids]
    size = -(-len(flat) // nj)
    jobs = []
    for job in range(nj):
        work: dict[int, list[str]] = {}
        for pair, utt in flat[job * size:(job + 1) * size]:
            work.setdefault(pair, []).append(utt)
        jobs.append(list(work.items()))
    return jobs


def effective_jobs(total: int, nj: int, min_utts_per_job: int) -> int:
    return max(1, min(nj, -(-total // max(1, min_utts_per_job))))


def run_job(data_dir: Path, out_dir: Path, utts: list[str], job: int, on_error: str, cfg) -> None:
    """Features of `utts` of one data dir into OUT/feats.JOB.{ark,scp} and its per-job tables."""
    import kaldiio

    from mslam.data.audio import AudioError
    from mslam.data.features import load_features
    data = DataDir(data_dir)
    stats = CMVNStats(cfg.num_mel_bins)
    ark, scp = out_dir / f"feats.{job}.ark", out_dir / f"feats.{job}.scp"
    tmp_ark, tmp_scp = ark.with_suffix(".ark.tmp"), scp.with_suffix(".scp.tmp")
    frames, bad = {}, {}
    with kaldiio.WriteHelper(f"ark,scp:{tmp_ark},{tmp_scp}") as writer:
        for i, utt_id in enumerate(utts, 1):
            try:
                feats = load_features(data.utterance(utt_id), cfg).numpy()
            except AudioError as e:
                if on_error == "fail":
                    raise
                bad[utt_id] = str(e).replace("\n", " ")
                continue
            writer(utt_id, feats)
            stats.add(feats)
            frames[utt_id] = feats.shape[0]
            if i % 500 == 0:
                print(f"job {job}: {data_dir}: {i}/{len(utts)} utterances", flush=True)
    # The scp names the temporary ark; point it at the final name before publishing both.
    lines = Path(tmp_scp).read_text(encoding="utf-8").replace(str(tmp_ark), str(ark))
    os.replace(tmp_ark, ark)
    Path(tmp_scp).write_text(lines, encoding="utf-8")
    os.replace(tmp_scp, scp)
    write_table(out_dir / f"utt2num_frames.{job}", frames)
    (out_dir / f"bad_utts.{job}").unlink(missing_ok=True)
    if bad:
        write_table(out_dir / f"bad_utts.{job}", bad)
    stats.save(out_dir / f"cmvn.{job}.npz")
    print(f"job {job}: {data_dir}: {len(frames)} utterances written, {len(bad)} skipped", flush=True)


def resampling_note(data_dir: Path, sample: int = 20) -> str | None:
    """A note when the first audio files of a data dir are not at the features' rate. They are resampled
    on load, which is right, but a user should know: 8 kHz telephone audio leaves the mel bands above
    4 kHz empty. Pipes and arks are not opened."""
    import soundfile
    rates = []
    for entry in list(DataDir(data_dir).tables.get("wav.scp", {}).values())[:sample]:
        if Path(entry.strip()).is_file():
            try:
                rates.append(soundfile.info(entry.strip()).samplerate)
            except RuntimeError:
                continue  # unreadable: the job that reads it names the file
    other = [r for r in rates if r != FEATURE_RATE]
    if not other:
        return None
    listed = " and ".join(f"{r} Hz" for r in sorted(set(other)))
    note = (f"note: {data_dir}: audio at {listed} ({len(other)} of the {len(rates)} files checked) is resampled "
            f"to {FEATURE_RATE} Hz")
    if min(other) < FEATURE_RATE:
        note += f"; the mel bands above {min(other) // 2} Hz hold no signal from it"
    return note


def merge_jobs(data_dir: Path, out_dir: Path, jobs: list[int]) -> tuple[int, int]:
    """One output dir from the jobs that computed its utterances."""
    if not jobs:
        raise DataDirError(f"{data_dir}: no utterances to compute features of")
    feats, frames, bad = {}, {}, {}
    stats = CMVNStats.load(out_dir / f"cmvn.{jobs[0]}.npz")
    for job in jobs:
        feats.update(read_table(out_dir / f"feats.{job}.scp", check_sorted=False))
        frames.update(read_table(out_dir / f"utt2num_frames.{job}", check_sorted=False))
        if (out_dir / f"bad_utts.{job}").exists():
            bad.update(read_table(out_dir / f"bad_utts.{job}", check_sorted=False))
        if job != jobs[0]:
            stats.merge(CMVNStats.load(out_dir / f"cmvn.{job}.npz"))
    # The output data dir: the input's tables for the utterances that have features.
    subset_data_dir(data_dir, out_dir, utt_list=feats.keys())
    write_table(out_dir / "feats.scp", feats)
    write_table(out_dir / "utt2num_frames", frames)
    (out_dir / "bad_utts").unlink(missing_ok=True)
    if bad:
        write_table(out_dir / "bad_utts", bad)
    stats.save(out_dir / "cmvn.npz")
    for job in jobs:
        for name in JOB_FILES:
            (out_dir / name.format(job)).unlink(missing_ok=True)
    return len(feats), len(bad)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dirs", nargs="+", type=Path, metavar="DATA_DIR OUT_DIR",
                   help="one or more pairs: a data dir and the dir its features go to")
    p.add_argument("--nj", type=int, default=1, help="number of parallel jobs (default: 1)")
    p.add_argument("--min-utts-per-job", type=int, default=200,
                   help="fewer jobs than --nj when the jobs would get fewer utterances than this (default: 200)")
    p.add_argument("--cmd", default=str(REPO_TOOLS / "run.pl"), help="job launcher (default: tools/run.pl)")
    p.add_argument("--log-dir", type=Path, help="where fbank.JOB.log go (default: the first OUT_DIR/log)")
    p.add_argument("--on-error", choices=("fail", "skip"), default="fail",
                   help="unusable audio: stop (default) or skip and list it in OUT/bad_utts")
    p.add_argument("--num-mel-bins", type=int, default=80)
    p.add_argument("--job", type=int, help=argparse.SUPPRESS)  # set by the launcher: run job N of --nj
    args = p.parse_args(argv)
    if len(args.dirs) % 2:
        p.error(f"expected DATA_DIR OUT_DIR pairs, got {len(args.dirs)} paths (the last has no OUT_DIR)")
    pairs = list(zip(args.dirs[0::2], args.dirs[1::2]))
    try:
        utt_ids = [DataDir(data_dir).validate().utt_ids for data_dir, _ in pairs]
        if args.job is not None:
            return job_main(args, pairs, utt_ids)
        nj = effective_jobs(sum(map(len, utt_ids)), args.nj, args.min_utts_per_job)
        for data_dir, _ in pairs:
            note = resampling_note(data_dir)
            if note:
                print(f"compute_fbank: {note}", flush=True)
        for _, out_dir in pairs:
            out_dir.mkdir(parents=True, exist_ok=True)
        log = (args.log_dir or pairs[0][1] / "log") / "fbank.JOB.log"
        cmd = [*shlex.split(args.cmd), f"JOB=1:{nj}", str(log), sys.executable, "-m", "mslam.bin.compute_fbank",
               *map(str, args.dirs), "--nj", str(nj), "--job", "JOB",
               "--on-error", args.on_error, "--num-mel-bins", str(args.num_mel_bins)]
        if subprocess.run(cmd).returncode != 0:
            print(f"compute_fbank: a job failed; see {str(log).replace('JOB', '*')}", file=sys.stderr)
            return 1
        jobs_of_pair: dict[int, list[int]] = {}
        for job, work in enumerate(plan_jobs(utt_ids, nj), 1):
            for pair, _ in work:
                jobs_of_pair.setdefault(pair, []).append(job)
        for pair, (data_dir, out_dir) in enumerate(pairs):
            written, skipped = merge_jobs(data_dir, out_dir, jobs_of_pair.get(pair, []))
            print(f"compute_fbank: {written} utterances -> {out_dir}/feats.scp"
                  + (f"; {skipped} skipped, listed in {out_dir}/bad_utts" if skipped else ""))
    except DataDirError as e:
        print(f"compute_fbank: {e}", file=sys.stderr)
        return 1
    return 0


def job_main(args, pairs: list[tuple[Path, Path]], utt_ids: list[list[str]]) -> int:
    """One job of the plan: the same plan the driver made, from the same inputs."""
    from mslam.data.audio import AudioError
    from mslam.data.features import FbankConfig
    cfg = FbankConfig(num_mel_bins=args.num_mel_bins)
    try:
        for pair, utts in plan_jobs(utt_ids, args.nj)[args.job - 1]:
            data_dir, out_dir = pairs[pair]
            run_job(data_dir, out_dir, utts, args.job, args.on_error, cfg)
    except AudioError as e:
        print(f"compute_fbank: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
