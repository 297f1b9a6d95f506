#!/usr/bin/env bash
# The main job on the embedded default: no download. Builds rtnq, writes a seeded synthetic
# Llama-3.2-1B-shaped BF16 model (once), generates from it, then compares 16-bit, RTN-8 and RTN-4
# on it: size, decode and prefill speed against 16-bit, and top-1 agreement with the 16-bit model.
#   scripts/demo.sh [SHAPE]      SHAPE defaults to llama-3.2-1b (see `rtnq synth --help`)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
shape="${1:-llama-3.2-1b}"
rtnq=build/release/tools/rtnq/rtnq
model="out/synth-${shape}"
if [ ! -f "$model/config.json" ]; then
  "$rtnq" synth --shape "$shape" --seed 0 --dtype bf16 -o "$model"
fi
# The summary only; not `inspect | head`: head exits early, inspect may then die of SIGPIPE and
# pipefail would end the demo here.
summary=$("$rtnq" inspect "$model")
sed -n 1,6p <<< "$summary"
"$rtnq" generate "$model" -p "The quick brown fox" -n 16 --seed 1
echo
echo "== 16-bit vs RTN-8 vs RTN-4 (quantized while loading; speeds measured on this machine) =="
"$rtnq" bench e2e "$model" --quant none,rtn8,rtn4 --prefill 64 --decode 32 --batch 1 --threads "$(nproc)"
