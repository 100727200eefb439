"""Dev evaluation under DDP: two CPU processes (gloo) each evaluate half of the fixed dev batches, and
the reduced loss, accuracy and CER equal what one process computes over the whole dev set."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

WORLD = 2


def config(corpus: str):
    from mslam.tasks.finetune import load_finetune_config
    from testlib import TINY_HEAD, TINY_MODEL
    # asr with CTC: a loss, and greedy hypotheses gathered for the CER; 2 utterances per dev batch
    return load_finetune_config({
        "task": "asr", "model": TINY_MODEL, "head": {**TINY_HEAD, "asr_decoder": "ctc"}, "spec_augment": None,
        "data": {"root": corpus, "train": ["few/asr"], "dev": ["asr/dev"], "char_vocab": "chars.txt",
                 "num_workers": 0, "batch": {"batch_sequences": 2}},
        "trainer": {"max_steps": 1, "tensorboard": False, "device": "cpu"}})


def worker(rank: int, world: int, corpus: str, out: str, port: int) -> None:
    """One process: the trainer's dev evaluation of the initial model; rank 0 writes what every
    process evaluated and the result to result.json."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    from mslam.tasks.finetune import FinetuneTrainer
    from mslam.train import distributed as D
    env = D.init_distributed("cpu")
    trainer = FinetuneTrainer(config(corpus), Path(out) / "run", env, resume=False)
    seen = []
    share = trainer.dev_share
    trainer.dev_share = lambda: [(b, ex) for b, ex in share() if not seen.extend(e.id for e in ex)]
    result = trainer.evaluate()
    every = D.all_gather_objects({"seen": seen, "result": result, "dev": [e.id for e in trainer.dev]}, env)
    if rank == 0:
        Path(out, "result.json").write_text(json.dumps(every))
    D.shutdown(env)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(corpus: Path, out: Path, world: int) -> list[dict]:
    code = ("import sys, torch.multiprocessing as mp; sys.path[:0] = sys.argv[1:3]; "
            "from test_dev_ddp import worker; "
            "mp.start_processes(worker, args=(int(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6])), "
            "nprocs=int(sys.argv[3]), start_method='fork')")
    here = Path(__file__).parent
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-c", code, str(here), str(here.parent), str(world), str(corpus), str(out),
                    str(free_port())], env=env, check=True, timeout=300)
    return json.loads((out / "result.json").read_text())


@pytest.mark.slow
def test_dev_loss_under_two_processes_equals_one_process(ft_corpus, tmp_path):
    one = run(ft_corpus, tmp_path / "one", 1)[0]
    two = run(ft_corpus, tmp_path / "two", WORLD)
    dev = one["dev"]
    assert len(dev) >= 8 and sorted(one["seen"]) == sorted(dev)
    a, b = two[0]["seen"], two[1]["seen"]
    assert not set(a) & set(b) and sorted(a + b) == sorted(dev)
    assert abs(len(a) - len(b)) <= 2 and min(len(a), len(b)) >= len(dev) // 2 - 1  # half each (2 per batch)
    for rank in two:
        assert rank["result"].keys() == one["result"].keys() == {"loss", "cer"}
        for k, v in one["result"].items():
            assert rank["result"][k] == pytest.approx(v, abs=1e-6), k
