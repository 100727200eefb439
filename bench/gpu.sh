#!/usr/bin/env bash
# The pre-training step table of bench/README.md on one GPU (H100 or H200), in one call of at most
# 8 minutes: every row is cut off by its own time limit so that the whole fits.
#
#   bash bench/gpu.sh            # prints a markdown table; the JSON of each row lands in $OUT (or /tmp/gpu_bench)
#
# Rows: `before` (the tree at $BEFORE, the commit before the host-sync work, where git is there),
# eager, each Conformer block compiled, the whole model compiled, and the 2B model under FSDP2 (one
# process) with activation checkpointing. Uses `python3` with torch (set PYTHON to another).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
BEFORE=${BEFORE:-cfb8b4e}
DEST=${OUT:-/tmp/gpu_bench}
mkdir -p "$DEST"
export PYTHONUNBUFFERED=1
ROOT=$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

row() {  # row LABEL SECONDS SOURCE_TREE ARGS...
    local label=$1 limit=$2 tree=$3; shift 3
    local t0=$SECONDS
    PYTHONPATH=$tree timeout -k 10 "$limit" $PY "$ROOT/bench/pretrain_mfu.py" --json --label "$label" "$@" \
        > "$DEST/$label.json" 2> "$DEST/$label.log" \
        || { echo "row $label: failed or cut off after $((SECONDS - t0)) s; last lines:"; tail -n 5 "$DEST/$label.log"; }
    echo "row $label: $((SECONDS - t0)) s"
}

SIZE=(--config mslam_0.6b --steps 5 --warmup 2)
if git rev-parse -q --verify "$BEFORE^{commit}" >/dev/null 2>&1; then
    rm -rf "$DEST/before_tree" && mkdir -p "$DEST/before_tree" && git archive "$BEFORE" | tar -x -C "$DEST/before_tree"
    row before 75 "$DEST/before_tree" "${SIZE[@]}" --launches
else
    echo "row before: no git history here (commit $BEFORE); skipped"
fi
row eager 75 "$ROOT" "${SIZE[@]}" --launches
row compile-blocks 90 "$ROOT" "${SIZE[@]}" --compile blocks
row compile-model 150 "$ROOT" "${SIZE[@]}" --compile model --launches
row 2b-fsdp2-ckpt 75 "$ROOT" --config mslam_2b --steps 3 --warmup 1 --fsdp --checkpoint-activations

$PY - "$DEST" <<'PY'
import json, pathlib, sys
rows = []
for label in ("before", "eager", "compile-blocks", "compile-model", "2b-fsdp2-ckpt"):
    f = pathlib.Path(sys.argv[1]) / f"{label}.json"
    if f.is_file() and f.stat().st_size:
        rows.append(json.loads(f.read_text()))
def fmt(v, spec):
    return "-" if v is None else format(v, spec)
print("| run | s / step | TFLOP/s | MFU vs datasheet | vs measured bf16 mm | encoder tokens/s | peak GiB "
      "| launches / step | host syncs / step | compile s |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    print(f"| {r['label']} ({r['device']}) | {r['step_seconds']:.3f} | {r['achieved_tflops']:.1f} "
          f"| {fmt(r['mfu_vs_datasheet'], '.1%')} | {fmt(r['mfu_vs_measured_matmul'], '.1%')} "
          f"| {r['encoder_tokens_per_second']:,.0f} | {fmt(r['peak_memory_gib'], '.1f')} "
          f"| {fmt(r['launches_per_step'], ',')} | {fmt(r['host_syncs_per_step'], 'd')} | {fmt(r['compile_seconds'], '.0f')} |")
PY
