"""Four CPU processes (gloo) reading a shard set: each rank reads only the records of its own
micro-batch, the ranks' utterances are disjoint and together the one-process global batch, and
after a SIGKILL the restarted ranks continue with the identical next batch."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

WORLD = 4


def config(root: Path):
    from mslam.data.pretrain_data import DataConfig, TextSourceConfig
    return DataConfig(root=str(root), text=TextSourceConfig(dirs=["set"], format="shards", batch_chars=1200,
                                                         batch_sequences=24))


def tokenizer(root: Path):
    from mslam.data.tokenizer import CharTokenizer
    return CharTokenizer.build({"xx": [(root / "chars.txt").read_text(encoding="utf-8")]})


def worker(rank: int, root: str, start: int, stop: int, delay: float) -> None:
    """One rank: steps start..stop-1; rank 0 appends each step's per-rank utterance ids and the
    global ids each rank read to log.jsonl (a line per finished step, as a checkpoint would be)."""
    import torch.distributed as dist
    from mslam.data.pretrain_data import PretrainBatches
    root = Path(root)
    dist.init_process_group("gloo", init_method=f"file://{root}/rendezvous-{start}", rank=rank,
                            world_size=WORLD)
    data = PretrainBatches(config(root), tokenizer(root), seed=0, rank=rank, world_size=WORLD)
    source = data.records["text"]
    reads: list[int] = []
    read = source.record
    source.record = lambda i: (reads.append(int(i)), read(i))[1]
    for step in range(start, stop):
        reads.clear()
        batch = data[step]
        mine = {"ids": batch.utt_ids[0], "read": sorted(reads)}
        gathered = [None] * WORLD
        dist.all_gather_object(gathered, mine)
        if rank == 0:
            with open(root / "log.jsonl", "a") as f:
                f.write(json.dumps({"step": step, "ranks": gathered}) + "\n")
                f.flush()
                os.fsync(f.fileno())
        time.sleep(delay)
    dist.destroy_process_group()


def launch(root: Path, start: int, stop: int, delay: float) -> subprocess.Popen:
    code = ("import sys, torch.multiprocessing as mp; sys.path.insert(0, sys.argv[1]); "
            "from test_shards_ddp import worker; "
            "mp.start_processes(worker, args=(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])), "
            f"nprocs={WORLD}, start_method='fork')")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", code, str(Path(__file__).parent), str(root), str(start), str(stop),
                             str(delay)], env=env, start_new_session=True, stderr=subprocess.PIPE, text=True)


def logged(root: Path) -> list[dict]:
    lines = (root / "log.jsonl").read_text().splitlines() if (root / "log.jsonl").exists() else []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:   # a line cut by the kill: that step did not finish
            break
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from mslam.bin.make_shards import main as make_shards
    root = tmp_path_factory.mktemp("shards_ddp")
    (root / "txt").mkdir()
    letters = "abcdefghij"
    for k, lang in enumerate(["en", "de", "fr", "sw", "yo"]):
        lines = [" ".join(letters[(i + j) % 10] * (1 + (i * 7 + j) % 9) for j in range(1 + i % 12))
                 for i in range(40 * (5 - k))]
        (root / "txt" / f"{lang}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "chars.txt").write_text(letters + " ", encoding="utf-8")
    # Two length buckets of at least a hundred sentences: no batch needs to repeat one.
    assert make_shards(["--kind", "text", "--shard-size", "25", "--buckets", "2", "--out", str(root / "set"),
                        str(root / "txt")]) == 0
    return root


def test_four_ranks_read_disjoint_parts_of_the_global_batch_and_resume_after_a_kill(corpus):
    from mslam.data.pretrain_data import PretrainBatches
    proc = launch(corpus, 1, 1000, delay=0.1)
    deadline = time.time() + 60
    while len(logged(corpus)) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    _, err = proc.communicate()
    done = logged(corpus)
    assert len(done) >= 3, f"the ranks did not run: {err[-3000:]}"
    assert [r["step"] for r in done] == list(range(1, len(done) + 1))
    resumed_from = done[-1]["step"] + 1
    proc = launch(corpus, resumed_from, resumed_from + 2, delay=0.0)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    after = logged(corpus)[len(done):]
    assert [r["step"] for r in after] == [resumed_from, resumed_from + 1]

    single = PretrainBatches(config(corpus), tokenizer(corpus), seed=0, world_size=1, grad_accum=WORLD)
    source = single.records["text"]
    for entry in done + after:
        micro = single.plan(entry["step"])["text"]   # the one-process global batch, dealt in 4
        ranks = entry["ranks"]
        for rank, part in enumerate(ranks):
            assert part["read"] == sorted(micro[rank])           # it read its own micro-batch, nothing else
            assert part["ids"] == [source.record(i).id for i in micro[rank]]
        ids = [u for part in ranks for u in part["ids"]]
        assert len(ids) == len(set(ids))                        # disjoint
        assert sorted(ids) == sorted(source.record(i).id for m in micro for i in m)  # union: the global batch
