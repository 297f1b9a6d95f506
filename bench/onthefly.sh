#!/usr/bin/env bash
# Quantization while loading, at scale: a seeded synthetic Llama-3.1-8B-shaped BF16 checkpoint
# (~16 GB, written once by `rtnq synth`) is loaded with --quant rtn8 / rtn4; reports peak RSS
# against the quantized size + KV cache, and the quantizer's rate (GB/s of bf16 input per core).
#   bench/onthefly.sh [MODEL_DIR] [THREADS]     (default out/synth-llama-3.1-8b, all cores)
set -euo pipefail
cd "$(dirname "$0")/.."
rtnq="${RTNQ_BIN:-build/release/tools/rtnq/rtnq}"
model="${1:-out/synth-llama-3.1-8b}"
threads="${2:-$(nproc)}"
if [ ! -f "$model/config.json" ]; then
  "$rtnq" synth --shape llama-3.1-8b --seed 0 --dtype bf16 -o "$model" --progress
fi
for quant in rtn8 rtn4 "rtn4 --upcast-layers first:2,last:2"; do
  out=$(mktemp)
  # shellcheck disable=SC2086
  /usr/bin/time -f "%M" -o "$out.rss" "$rtnq" generate "$model" --quant $quant -p "Hello" -n 4 \
    -t "$threads" --json > "$out"
  python3 - "$out" "$out.rss" "$quant" "$threads" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
peak = int(open(sys.argv[2]).read().split()[-1]) * 1024
load = r["load"]
quantized = load["weight_bytes"]
print(f"--quant {sys.argv[3]:36s} peak RSS {peak/2**30:6.2f} GiB = {peak/quantized:5.3f} x quantized weights "
      f"({quantized/2**30:.2f} GiB); quantized {load['source_bytes']/1e9:.1f} GB in {load['quantize_seconds']:.1f} s = "
      f"{load['gb_per_second']:.2f} GB/s on {sys.argv[4]} threads ({load['gb_per_second']/int(sys.argv[4]):.2f} GB/s per core)")
PY
  rm -f "$out" "$out.rss"
done
