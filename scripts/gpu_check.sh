#!/usr/bin/env bash
# The GPU check: run on any Linux box with an NVIDIA GPU and its driver, with an arbor
# binary built with `--features cuda` (see docs/engines.md, "CUDA") and carried there; the
# box needs no network. Everything it runs is made by arbor itself (random weights, no
# download):
#
#   1. the tiny model: the device path (candle's ops and autograd on CUDA) against the CPU
#      kernels on one batch (logits, one update's loss and gradient norm, the weights after
#      it; `arbor device-check`), then a few GRPO and DeepSearch iterations on the GPU;
#   2. Qwen2-0.5B- and Qwen2-1.5B-shaped checkpoints (`arbor init-model`): the same
#      device check, then GRPO and DeepSearch iterations, with tokens/s of sampling and of
#      the tree search, update seconds, and peak GPU memory (nvidia-smi, polled);
#
# all written to one file, docs/results/gpu/<card>.txt by default. Without a GPU (no
# nvidia-smi, or it sees no device) it runs its CPU fallback: the tiny model only, the
# CPU's generic path against its kernels (CI runs this).
#
# usage: scripts/gpu_check.sh [ARBOR_BINARY] [OUTPUT_FILE]
#   GPU_CHECK_SHAPES="qwen2-0.5b qwen2-1.5b"  the large shapes to run (GPU only)
#   GPU_CHECK_ITERATIONS=3                      iterations per training run
set -euo pipefail
arbor="${1:-${ARBOR:-./target/release/arbor}}"
if [ ! -x "$arbor" ]; then
  echo "gpu_check: no arbor binary at $arbor (build one with: cargo build --release --features cuda)" >&2
  exit 2
fi
iterations="${GPU_CHECK_ITERATIONS:-3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  device=cuda
  card="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)"
  shapes="${GPU_CHECK_SHAPES:-qwen2-0.5b qwen2-1.5b}"
else
  device=cpu
  card="cpu-fallback"
  shapes=""
fi
slug="$(echo "$card" | tr -c 'A-Za-z0-9.\n-' '-' | tr -s '-')"
out="${2:-docs/results/gpu/$slug.txt}"
mkdir -p "$(dirname "$out")"

# Peak GPU memory (MiB) while a command runs, polled every 0.2 s.
peak_memory() {
  local log="$work/mem.log"
  : > "$log"
  if [ "$device" = cuda ]; then
    ( while true; do
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -n 1 >> "$log"
        sleep 0.2
      done ) &
    local poll=$! rc=0
    "$@" || rc=$?
    kill "$poll" 2>/dev/null || true
    wait "$poll" 2>/dev/null || true
    echo "peak GPU memory: $(sort -n "$log" | tail -n 1) MiB"
    return $rc
  fi
  "$@"
}

# Trains `iterations` iterations of method $2 on model folder $1; prints the summary line
# and the rates read from it.
train() {
  local model="$1" method="$2" name
  name="$(basename "$model")-$method"
  echo "### $method on $(basename "$model"), $iterations iterations, --device $device"
  peak_memory "$arbor" train --model "$model" --device "$device" --method "$method" \
    --iterations "$iterations" --seed 1 --headless --log-every 1000it --config "$work/check.toml" \
    --store "$work/runs.sled" --run "$name" > "$work/$name.json" 2> "$work/$name.err" \
    || { echo "FAILED:"; tail -n 20 "$work/$name.err"; return 1; }
  cat "$work/$name.json"
  python3 - "$work/$name.json" <<'PY' || true
import json, sys
s = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
p = s.get("phase_seconds", {})
sample, update = p.get("sample", 0.0), p.get("update", 0.0)
tok = s.get("generated_tokens", 0)
kind = "tree search" if s.get("expansions", 0) else "sampling"
rate = tok / sample if sample > 0 else float("nan")
print(f"{kind}: {tok} tokens in {sample:.2f} s = {rate:.0f} tokens/s; "
      f"update {update:.2f} s over {s.get('optimizer_steps', 0)} steps; wall {s.get('wall_seconds', 0):.1f} s")
PY
}

# A short held-out evaluation (16 problems, 4 samples each): the check times training.
printf '[eval]\nproblems = 16\nk = 4\n' > "$work/check.toml"

{
  echo "# arbor GPU check: $card ($device), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  "$arbor" --version
  if [ "$device" = cuda ]; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv
  else
    echo "no GPU: the CPU fallback (tiny model; the CPU's generic path against its kernels)"
  fi
  echo
  echo "## tiny"
  "$arbor" init-model --shape tiny --out "$work/tiny" --seed 1
  echo "### device path against the CPU kernels (tolerance 1e-3, relative)"
  "$arbor" device-check --model "$work/tiny" --device "$device"
  train "$work/tiny" grpo
  train "$work/tiny" deepsearch
  for shape in $shapes; do
    echo
    echo "## $shape"
    "$arbor" init-model --shape "$shape" --out "$work/$shape" --seed 1
    echo "### device path against the CPU kernels (tolerance 1e-3, relative)"
    "$arbor" device-check --model "$work/$shape" --device "$device" || echo "device-check FAILED"
    train "$work/$shape" grpo || true
    train "$work/$shape" deepsearch || true
    rm -rf "$work/$shape"
  done
  echo
  echo "gpu_check: done"
} 2>&1 | tee "$out"
echo "written: $out" >&2
