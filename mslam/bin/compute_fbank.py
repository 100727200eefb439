"""Dump 80-d log-mel features of a data dir to kaldiio ark/scp, in parallel jobs, with global CMVN stats.

    python -m mslam.bin.compute_fbank data/train dump/fbank/train --nj 4 [--cmd tools/run.pl]

The output dir becomes a data dir: the input's tables plus feats.scp, utt2num_frames and
cmvn.npz (count, sum and sum of squares per dimension). Work is split into `--nj` jobs
launched through `--cmd` (run.pl locally, slurm.pl on a cluster); each job writes its own
ark/scp atomically, logs to OUT/log/fbank.JOB.log, and the driver merges them.
Audio that cannot be used stops the run with the utterance named (`--on-error fail`), or is
skipped, counted and listed in OUT/bad_utts (`--on-error skip`).
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np

from mslam.data.audio import AudioError
from mslam.data.features import CMVNStats, FbankConfig, load_features
from mslam.data.kaldi import DataDir, DataDirError, read_table, subset_data_dir, write_table

REPO_TOOLS = Path(__file__).resolve().parents[2] / "tools"


def job_utterances(data: DataDir, nj: int, job: int) -> list[str]:
    ids = data.utt_ids
    size = -(-len(ids) // nj)
    return ids[(job - 1) * size: job * size]


def run_job(data_dir: Path, out_dir: Path, nj: int, job: int, on_error: str, cfg: FbankConfig) -> None:
    data = DataDir(data_dir)
    utts = job_utterances(data, nj, job)
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
                print(f"job {job}: {i}/{len(utts)} utterances", flush=True)
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
    print(f"job {job}: {len(frames)} utterances written, {len(bad)} skipped", flush=True)


def merge_jobs(data_dir: Path, out_dir: Path, nj: int) -> tuple[int, int]:
    feats, frames, bad = {}, {}, {}
    stats = CMVNStats.load(out_dir / "cmvn.1.npz")
    for job in range(1, nj + 1):
        feats.update(read_table(out_dir / f"feats.{job}.scp", check_sorted=False))
        frames.update(read_table(out_dir / f"utt2num_frames.{job}", check_sorted=False))
        if (out_dir / f"bad_utts.{job}").exists():
            bad.update(read_table(out_dir / f"bad_utts.{job}", check_sorted=False))
        if job > 1:
            stats.merge(CMVNStats.load(out_dir / f"cmvn.{job}.npz"))
    # The output data dir: the input's tables for the utterances that have features.
    subset_data_dir(data_dir, out_dir, utt_list=feats.keys())
    write_table(out_dir / "feats.scp", feats)
    write_table(out_dir / "utt2num_frames", frames)
    if bad:
        write_table(out_dir / "bad_utts", bad)
    stats.save(out_dir / "cmvn.npz")
    for job in range(1, nj + 1):
        for name in (f"feats.{job}.scp", f"utt2num_frames.{job}", f"cmvn.{job}.npz", f"bad_utts.{job}"):
            (out_dir / name).unlink(missing_ok=True)
    return len(feats), len(bad)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--nj", type=int, default=1, help="number of parallel jobs (default: 1)")
    p.add_argument("--cmd", default=str(REPO_TOOLS / "run.pl"), help="job launcher (default: tools/run.pl)")
    p.add_argument("--on-error", choices=("fail", "skip"), default="fail",
                   help="unusable audio: stop (default) or skip and list it in OUT/bad_utts")
    p.add_argument("--num-mel-bins", type=int, default=80)
    p.add_argument("--job", type=int, help=argparse.SUPPRESS)  # set by the launcher for one job
    args = p.parse_args(argv)
    cfg = FbankConfig(num_mel_bins=args.num_mel_bins)
    try:
        data = DataDir(args.data_dir).validate()
        if args.job is not None:
            run_job(args.data_dir, args.out_dir, args.nj, args.job, args.on_error, cfg)
            return 0
        nj = max(1, min(args.nj, len(data)))
        args.out_dir.mkdir(parents=True, exist_ok=True)
        log = args.out_dir / "log" / "fbank.JOB.log"
        cmd = [*shlex.split(args.cmd), f"JOB=1:{nj}", str(log), sys.executable, "-m", "mslam.bin.compute_fbank",
               str(args.data_dir), str(args.out_dir), "--nj", str(nj), "--job", "JOB", "--on-error", args.on_error,
               "--num-mel-bins", str(args.num_mel_bins)]
        if subprocess.run(cmd).returncode != 0:
            print(f"compute_fbank: a job failed; see {str(log).replace('JOB', '*')}", file=sys.stderr)
            return 1
        written, skipped = merge_jobs(args.data_dir, args.out_dir, nj)
    except (DataDirError, AudioError) as e:
        print(f"compute_fbank: {e}", file=sys.stderr)
        return 1
    print(f"compute_fbank: {written} utterances -> {args.out_dir}/feats.scp"
          + (f"; {skipped} skipped, listed in {args.out_dir}/bad_utts" if skipped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
