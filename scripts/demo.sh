#!/usr/bin/env bash
# The main job on the embedded default: no download. Builds rtnq, writes a seeded synthetic
# Llama-3.2-1B-shaped BF16 model (once), and generates from it, reporting speed.
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
"$rtnq" inspect "$model" | head -n 6
"$rtnq" generate "$model" -p "The quick brown fox" -n 32 --seed 1
