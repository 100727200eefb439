"""Pre-training step throughput and model FLOPs utilisation (MFU) on one GPU (or the CPU).

    python bench/pretrain_mfu.py --config mslam_0.6b [--compile blocks|model] [--json]
    python bench/pretrain_mfu.py --config tiny --device cpu --steps 3 --launches   # CPU launch count

One step = all three data sources (speech, text, paired) through the full mSLAM objective
(w2v-BERT, span MLM, TLM, CTC), backward, and the trainer's optimiser update (fused Adam where
torch has it), in bf16 autocast on a GPU. Model FLOPs are counted by torch's FlopCounterMode on
one real step (matmuls, convolutions, attention), so MFU = counted FLOPs per second / the card's
dense bf16 peak. The script also measures a large bf16 matrix product in the same run, as the
achievable ceiling. `--launches`: the operators the host launches per step, counted by
torch.profiler (on a GPU the CUDA kernels, on a CPU the innermost aten operators), and the host
syncs of the step (mslam.train.host_sync). `--compile model` compiles the whole PretrainModel
(static shapes: the batch here has fixed shapes); `blocks` each Conformer block.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from mslam.model.pretrain import PairedPart, PretrainBatch, SpeechPart, TextPart
from mslam.tasks.pretrain import build_pretrain_model

# Dense (no sparsity) bf16 tensor-core peaks, from the vendors' data sheets.
PEAK_BF16_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0}


def card_peak(name: str) -> float | None:
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def make_batch(args, vocab: int, device) -> PretrainBatch:
    g = torch.Generator().manual_seed(0)
    frames = int(args.speech_seconds * 100)
    pframes = int(args.paired_seconds * 100)

    def lens(n, full):  # realistic padding: lengths from 60% to 100% of the longest
        return torch.randint(int(full * 0.6), full + 1, (n,), generator=g).clamp(max=full).sort(descending=True).values

    def tokens(n, length):
        return torch.randint(6, vocab, (n, length), generator=g)

    batch = PretrainBatch(
        speech=SpeechPart(torch.randn(args.speech_batch, frames, 80, generator=g), lens(args.speech_batch, frames)),
        text=TextPart(tokens(args.text_batch, args.text_len), lens(args.text_batch, args.text_len)),
        paired=PairedPart(torch.randn(args.paired_batch, pframes, 80, generator=g), lens(args.paired_batch, pframes),
                          tokens(args.paired_batch, args.paired_text_len),
                          lens(args.paired_batch, args.paired_text_len)))
    return batch.to(device)


def matmul_tflops(device, dtype) -> float:
    a = torch.randn(8192, 8192, device=device, dtype=dtype)
    b = torch.randn(8192, 8192, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(20):
        a @ b
    torch.cuda.synchronize()
    return 2 * 8192 ** 3 * 20 / (time.perf_counter() - t0) / 1e12


# aten operators that only make a new view or allocate: no kernel runs
NO_KERNEL = {"aten::as_strided", "aten::as_strided_", "aten::view", "aten::_unsafe_view", "aten::_reshape_alias",
             "aten::empty", "aten::empty_strided", "aten::empty_like", "aten::resolve_conj", "aten::resolve_neg",
             "aten::detach", "aten::alias", "aten::resize_", "aten::result_type", "aten::to", "aten::lift_fresh",
             "aten::expand", "aten::permute", "aten::transpose", "aten::t", "aten::unsqueeze", "aten::squeeze",
             "aten::select", "aten::slice", "aten::reshape", "aten::unflatten", "aten::split", "aten::unbind",
             "aten::chunk", "aten::narrow", "aten::diagonal", "aten::_local_scalar_dense", "aten::set_",
             "aten::is_nonzero", "aten::item"}


def count_launches(step, i: int, cuda: bool) -> int:
    """Operators launched by one step: CUDA kernels on a GPU; on a CPU the aten operators that call
    no other aten operator and run a kernel (views, allocations and scalar reads left out)."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
        step(i)
        if cuda:
            torch.cuda.synchronize()
    events = prof.events()
    if cuda:
        return sum(1 for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
    return sum(1 for e in events if e.name.startswith("aten::") and e.name not in NO_KERNEL
               and not any(c.name.startswith("aten::") for c in e.cpu_children))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="mslam_0.6b")
    p.add_argument("--speech-batch", type=int, default=8)
    p.add_argument("--speech-seconds", type=float, default=15.0)
    p.add_argument("--text-batch", type=int, default=32)
    p.add_argument("--text-len", type=int, default=512, help="paper: text capped at 512 characters")
    p.add_argument("--paired-batch", type=int, default=4)
    p.add_argument("--paired-seconds", type=float, default=15.0)
    p.add_argument("--paired-text-len", type=int, default=200)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--compile", nargs="?", const="blocks", default="", choices=["", "blocks", "model"],
                   help="torch.compile each Conformer block (regional: seconds) or the whole model")
    p.add_argument("--device", default="", help="cuda or cpu (default: cuda where there is one)")
    p.add_argument("--checkpoint-activations", action="store_true", help="recompute each Conformer block")
    p.add_argument("--launches", action="store_true", help="count launched operators and host syncs per step")
    p.add_argument("--label", default="", help="a name for this row in the JSON output")
    p.add_argument("--fsdp", action="store_true",
                   help="shard with FSDP2 (each Conformer block, then the model) in a 1-process group")
    p.add_argument("--profile", action="store_true", help="print the 15 most expensive kernels of one step")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    torch.backends.cuda.matmul.allow_tf32 = True
    model = build_pretrain_model(args.config).to(device).train()
    params = sum(p.numel() for p in model.parameters())
    if args.fsdp:  # the trainer's wrapping (trainer.parallel=fsdp), here in a group of one process
        import os
        import torch.distributed as dist
        from mslam.train.distributed import DistEnv, wrap_model
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29512")
        dist.init_process_group("nccl" if cuda else "gloo", rank=0, world_size=1)
        model = wrap_model(model, "fsdp", DistEnv(0, 2, 0, device))  # world 2: wrap_model shards only when distributed
    from mslam.train.schedule import OptimConfig, build_optimizer
    opt, _ = build_optimizer(model, OptimConfig(peak_lr=1e-4, warmup_steps=1))
    fused = bool(opt.param_groups[0].get("fused"))
    batch = make_batch(args, model.model_cfg.vocab_size, device)
    if args.checkpoint_activations:
        from mslam.model.conformer import ConformerStack
        for stack in (m for m in model.modules() if isinstance(m, ConformerStack)):
            stack.checkpoint_activations = True
    t_compile = None
    if args.compile == "blocks":
        from mslam.model.conformer import ConformerBlock
        for block in (m for m in model.modules() if isinstance(m, ConformerBlock)):
            block.compile(dynamic=False)  # one graph per sequence length: a few per step
    elif args.compile == "model":  # the whole model (trainer.compile): its shapes follow the input's alone
        model.compile_losses()

    def step(i):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            out = model(batch, step=i)
        out["loss"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return out

    if args.compile:
        t0 = time.perf_counter()
        step(0)
        if cuda:
            torch.cuda.synchronize()
        t_compile = time.perf_counter() - t0
    for i in range(args.warmup):
        step(i)
    counter = FlopCounterMode(display=False)
    with counter:
        step(args.warmup)
    flops = counter.get_total_flops()
    if args.profile:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
            step(args.warmup)
        sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
        print(prof.key_averages().table(sort_by=sort, row_limit=15, max_name_column_width=60))
    launches = syncs = None
    if args.launches:
        launches = count_launches(step, args.warmup, cuda)
        try:
            from mslam.train.host_sync import HostSyncRecorder
            with HostSyncRecorder() as rec:
                step(args.warmup)
            syncs = len(rec.calls)
        except ImportError:  # a tree from before the recorder
            syncs = None
    times = []
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    for i in range(args.steps):
        t0 = time.perf_counter()
        out = step(args.warmup + 1 + i)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    name = torch.cuda.get_device_name() if cuda else "cpu"
    peak = card_peak(name) if cuda else None
    mm = matmul_tflops(device, torch.bfloat16) if cuda else None
    encoder_tokens = (batch.speech.feat_lens.sum() // 4 + batch.text.token_lens.sum()
                      + batch.paired.feat_lens.sum() // 4 + batch.paired.token_lens.sum()).item()
    report = {
        "label": args.label, "device": name, "config": args.config, "params": params, "compile": args.compile,
        "fused_adam": fused, "checkpoint_activations": args.checkpoint_activations, "compile_seconds": t_compile,
        "step_seconds": t, "model_tflops_per_step": flops / 1e12, "achieved_tflops": flops / t / 1e12,
        "mfu_vs_datasheet": flops / t / 1e12 / peak if peak else None,
        "bf16_matmul_tflops": mm, "mfu_vs_measured_matmul": flops / t / 1e12 / mm if mm else None,
        "encoder_tokens_per_second": encoder_tokens / t,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2 ** 30 if cuda else None,
        "launches_per_step": launches, "host_syncs_per_step": syncs,
        "losses": {k: float(v.detach()) for k, v in out.items() if k.startswith(("w2v", "text", "tlm", "ctc", "loss"))},
        "batch": {k: v for k, v in vars(args).items() if k not in ("config", "json", "compile", "label")},
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for k, v in report.items():
        print(f"{k:28s} {v:.4g}" if isinstance(v, float) else f"{k:28s} {v}")


if __name__ == "__main__":
    main()
