"""Encoder speed and memory: mslam's speech encoder against ESPnet's ConformerEncoder and Hugging
Face's Wav2Vec2BertModel, at the same width, depth, FFN size, heads and kernel, on the same batch,
in the same process.

    python bench/encoder.py                       # 8 x 250 frames after subsampling, d 512, 6 layers
    python bench/encoder.py --lengths 2,10,30,60  # time and memory as utterances grow (seconds)
    python bench/encoder.py --json
    python bench/encoder.py --device cuda --bf16 --d-model 1024 --layers 24 --speech-layers 8 \
        --ffn 4096 --heads 8 --batch 16 --frames 375    # the 0.6B encoder on a GPU: MFU

Every model gets the same number of frames after its own subsampling (mslam and ESPnet: 4x conv2d
front ends over 10 ms log-mel frames; Hugging Face: its feature extractor's 2-frame stacking, 160-d).
Reported: parameters, forward and forward+backward time (fixed threads; medians over rounds that time
each model and the reference torch.mm once, each right after an untimed run), each peer's time divided by
mslam's, the memory of the activations kept for backward, and utilisation: model FLOPs per second /
the FLOPs per second of the large torch.mm.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import sys
import time
import warnings

import torch
from torch.utils.flop_counter import FlopCounterMode

from mslam.model.encoder import EncoderConfig, FrontEndConfig, JointEncoder, ModelConfig


def build_models(d: int, layers: int, ffn: int, heads: int, kernel: int, speech_layers: int) -> dict:
    """name -> (module, input maker(batch, frames_after_subsampling, generator, device) -> call)."""
    def mslam(conv_channels: int):
        cfg = ModelConfig(frontend=FrontEndConfig(conv_channels=conv_channels),
                          encoder=EncoderConfig(d_model=d, ffn_dim=ffn, heads=heads, speech_layers=speech_layers,
                                                shared_layers=layers - speech_layers, conv_kernel=kernel,
                                                conv_norm="group", conv_norm_groups=32))
        ours = JointEncoder(cfg, with_text=False)

        def ours_call(b, t, g, dev):
            feats, lens = torch.randn(b, 4 * t + 3, 80, generator=g).to(dev), torch.full((b,), 4 * t + 3, device=dev)
            return lambda: ours(feats, lens)[0]
        return ours, ours_call

    # mslam's default front end has d/4 channels; ESPnet's has d. The second row gives mslam ESPnet's
    # width, so that each peer is also compared with the mslam of (nearly) its own parameter count.
    models = {"mslam": mslam(d // 4), f"mslam.frontend{d}": mslam(d)}
    try:
        # espnet prints a notice about flash attention on import: keep stdout clean for --json
        with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
            warnings.simplefilter("ignore")
            from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
    except ImportError:
        print("espnet is not installed: ESPnet's ConformerEncoder is left out")
        ConformerEncoder = None
    if ConformerEncoder is not None:
        # ESPnet's recipe setting: conv2d input layer, relative positions, macaron FFNs, swish.
        espnet = ConformerEncoder(80, output_size=d, attention_heads=heads, linear_units=ffn, num_blocks=layers,
                                  input_layer="conv2d", pos_enc_layer_type="rel_pos", rel_pos_type="latest",
                                  selfattention_layer_type="rel_selfattn", macaron_style=True,
                                  use_cnn_module=True, cnn_module_kernel=kernel, use_flash_attn=False)

        def espnet_call(b, t, g, dev):
            feats = torch.randn(b, 4 * t + 3, 80, generator=g).to(dev)
            return lambda: espnet(feats, torch.full((b,), 4 * t + 3, device=dev))[0]

        models["espnet.ConformerEncoder"] = (espnet, espnet_call)
    try:
        from transformers import Wav2Vec2BertConfig, Wav2Vec2BertModel
    except ImportError:
        print("transformers is not installed: Hugging Face's Wav2Vec2BertModel is left out")
        return models
    # Dropout as in the other two (0.1; HF's defaults are 0): on a CPU its random masks cost ~10%.
    # No LayerDrop (HF's default 0.1 skips a random tenth of the layers in training mode; the others
    # run every layer).
    hf = Wav2Vec2BertModel(Wav2Vec2BertConfig(
        hidden_size=d, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=ffn,
        conv_depthwise_kernel_size=kernel, feature_projection_input_dim=160, add_adapter=False,
        hidden_dropout=0.1, activation_dropout=0.1, feat_proj_dropout=0.1, layerdrop=0.0))

    def hf_call(b, t, g, dev):
        feats, mask = torch.randn(b, t, 160, generator=g).to(dev), torch.ones(b, t, dtype=torch.long, device=dev)
        return lambda: hf(input_features=feats, attention_mask=mask).last_hidden_state

    models["hf.Wav2Vec2BertModel"] = (hf, hf_call)
    return models


def saved_activation_bytes(fn) -> int:
    """Bytes of the tensors autograd keeps for backward during one forward (distinct storages)."""
    seen: dict[int, int] = {}

    def pack(t):
        try:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        except RuntimeError:
            pass
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    del out
    return sum(seen.values())


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn) -> float:
    """Seconds of one call of fn, right after an untimed one: as in training, where steps follow steps,
    the allocator and caches hold what this model needs, not what the model before it left."""
    fn()
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def mm_reference(device: str, dtype: torch.dtype):
    """(a large torch.mm, its FLOPs): the speed the card or cores reach on dense matrix products."""
    n = 8192 if device == "cuda" else 2048
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    return (lambda: a @ b), 2 * n ** 3


def measure(models: dict, batch: int, frames: int, repeats: int, device: str, bf16: bool) -> tuple[dict, float]:
    """Times every model and the reference torch.mm in rounds (each once per round, medians over rounds),
    so that a slow spell of a shared machine hits all of them alike. -> (results, mm FLOP/s)."""
    g = torch.Generator().manual_seed(0)
    mm, mm_flops = mm_reference(device, torch.bfloat16 if bf16 else torch.float32)
    runs = {}
    for name, (model, make_call) in models.items():
        model.to(device).train()
        forward = make_call(batch, frames, g, device)

        def call(forward=forward):
            with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
                return forward()

        def fwd_only(call=call):
            with torch.no_grad():
                call()

        runs[name] = (call, fwd_only, lambda call=call: call().sum().backward())
    times = {name: ([], []) for name in runs}
    mm_times = []
    for _ in range(repeats + 1):  # round 0 warms up (first runs are slow even after an untimed call)
        mm_times.append(timed(mm))
        for name, (_, fwd_only, fwd_bwd) in runs.items():
            times[name][0].append(timed(fwd_only))
            times[name][1].append(timed(fwd_bwd))
    out = {}
    for name, (call, _, fwd_bwd) in runs.items():
        counter = FlopCounterMode(display=False)
        with counter:
            fwd_bwd()
        models[name][0].zero_grad(set_to_none=True)
        out[name] = {"forward_s": statistics.median(times[name][0][1:]),
                     "forward_backward_s": statistics.median(times[name][1][1:]),
                     "flops_fwd_bwd": counter.get_total_flops(),
                     "saved_activation_mib": saved_activation_bytes(call) / 2 ** 20}
    for model, _ in models.values():
        model.to("cpu")
    if device == "cuda":
        torch.cuda.empty_cache()
    return out, mm_flops / statistics.median(mm_times[1:])


def matched_ratios(params: dict, results: dict) -> dict:
    """peer -> (the mslam variant nearest in parameters, peer time / its time, the parameter gap)."""
    ours = [name for name in results if name.startswith("mslam")]
    out = {}
    for peer in results:
        if peer in ours:
            continue
        near = min(ours, key=lambda o: abs(params[o] - params[peer]))
        out[peer] = (near, results[peer]["forward_backward_s"] / results[near]["forward_backward_s"],
                     params[peer] / params[near] - 1)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--frames", type=int, default=250, help="frames after subsampling (40 ms each)")
    p.add_argument("--d-model", type=int, default=512)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--speech-layers", type=int, default=2, help="mslam: speech-only layers of --layers")
    p.add_argument("--ffn", type=int, default=2048)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kernel", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="timed rounds")
    p.add_argument("--lengths", help="comma-separated utterance lengths in seconds (batch 1) instead")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    models = build_models(args.d_model, args.layers, args.ffn, args.heads, args.kernel, args.speech_layers)
    params = {name: sum(p.numel() for p in m.parameters()) for name, (m, _) in models.items()}
    machine = torch.cuda.get_device_name() if args.device == "cuda" else f"{platform.machine()} {platform.processor()}"
    report = {"machine": machine.strip(), "threads": args.threads, "bf16": args.bf16,
              "torch": torch.__version__, "params": params, "tables": {}}
    shapes = ({f"1 x {sec} s": (1, int(float(sec) * 25)) for sec in args.lengths.split(",")} if args.lengths
              else {f"{args.batch} x {args.frames} frames": (args.batch, args.frames)})
    for label, (batch, frames) in shapes.items():
        results, mm = measure(models, batch, frames, args.repeats, args.device, args.bf16)
        for r in results.values():
            r["utilisation"] = r["flops_fwd_bwd"] / r["forward_backward_s"] / mm
        report["tables"][label] = {"mm_gflops": mm / 1e9, "results": results, "matched": {
            peer: {"mslam": o, "ratio": ratio, "param_gap": gap}
            for peer, (o, ratio, gap) in matched_ratios(params, results).items()}}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['machine']}, {args.threads} threads, torch {torch.__version__}{', bf16' if args.bf16 else ''}; "
          f"d {args.d_model}, {args.layers} layers, FFN {args.ffn}, {args.heads} heads, kernel {args.kernel}")
    for name, n in params.items():
        print(f"  params {name:26s} {n / 1e6:8.2f} M")
    for label, table in report["tables"].items():
        results, base = table["results"], table["results"]["mslam"]
        print(f"\n{label}; util against torch.mm at {table['mm_gflops']:.0f} GFLOP/s in the same rounds")
        print(f"  {'model':26s} {'fwd s':>8s} {'fwd+bwd s':>10s} {'x mslam':>8s} {'saved MiB':>10s} {'util':>6s}")
        for name, r in results.items():
            print(f"  {name:26s} {r['forward_s']:8.3f} {r['forward_backward_s']:10.3f} "
                  f"{r['forward_backward_s'] / base['forward_backward_s']:8.2f} {r['saved_activation_mib']:10.1f} "
                  f"{r['utilisation']:6.1%}")
        print("  each peer against the mslam of the nearest parameter count (fwd+bwd):")
        for peer, m in table["matched"].items():
            print(f"    {peer:24s} {m['ratio']:5.2f} x {m['mslam']}  (parameters {m['param_gap']:+.1%})")


if __name__ == "__main__":
    main()
