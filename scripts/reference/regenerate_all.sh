#!/usr/bin/env bash
# Regenerates every golden file in tests/golden from the independent references:
#   1. the Python reference venv (scripts/setup_venv.sh; first run compiles llama.cpp, ~10 min)
#   2. the rtnq binary (only its `synth` command is used, to write the synthetic models)
#   3. scripts/reference/llamacpp_ref.py  -> tests/golden/stories260K_llamacpp.json
#      scripts/reference/hf_ref.py        -> tests/golden/hf_synth_*.json
#      scripts/reference/export_ref.py    -> tests/golden/export_*.json
# Env: RTNQ_DATA (default ../shared/data), RTNQ_BUILD_DIR (default build/release).
# Takes about 10-15 minutes with a ready venv (perplexity over six GGUFs dominates).
set -euo pipefail
cd "$(dirname "$0")/../.."
export RTNQ_DATA="${RTNQ_DATA:-$(cd .. && pwd)/shared/data}"
build_dir="${RTNQ_BUILD_DIR:-build/release}"

scripts/setup_venv.sh

echo "regenerate_all: building rtnq in $build_dir"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build_dir" --target rtnq -j2

echo "regenerate_all: llama.cpp references (stories260K)"
.venv/bin/python scripts/reference/llamacpp_ref.py
echo "regenerate_all: HF transformers references (synthetic models)"
.venv/bin/python scripts/reference/hf_ref.py --rtnq "$build_dir/tools/rtnq/rtnq"
echo "regenerate_all: export references (compressed-tensors, GPTQ decoder, gguf-py + llama.cpp)"
.venv/bin/python scripts/reference/export_ref.py --rtnq "$build_dir/tools/rtnq/rtnq"
du -ch tests/golden/*.json | tail -n 1
git status --short tests/golden || true
