#!/usr/bin/env bash
# Creates/updates the Python reference venv (.venv in the repo root) used only to regenerate the
# golden files in tests/golden (scripts/reference/). rtnq itself never needs it.
#   scripts/setup_venv.sh          idempotent: does nothing if .venv already has every pin
# The venv uses Debian's python3 with --system-site-packages so that it sees Debian's CPU-only
# torch and numpy (PyPI torch wheels pull gigabytes of CUDA libraries).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
req=requirements-ref.txt
# llama.cpp inside llama-cpp-python is compiled here. Not GGML_NATIVE: on this Xeon (AMX) a
# native build dies with SIGILL in the AMX Q8_0 path inside the sandbox, and a fixed AVX2 build
# gives the same numbers on any x86-64-v3 machine.
llama_cmake_args="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_OPENMP=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF"

debs=(python3-venv python3-pip python3-torch python3-numpy python3-yaml python3-requests python3-matplotlib cmake g++)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup_venv: apt-get install ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "setup_venv: creating $venv (/usr/bin/python3 -m venv --system-site-packages)"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi

# Prints the pins that the venv does not satisfy (empty: all satisfied).
unmet() {
  "$venv/bin/python" - "$req" <<'PY'
import sys
from importlib import metadata
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, want = line.split("==")
    try:
        have = metadata.version(name)
    except metadata.PackageNotFoundError:
        have = None
    if have != want:
        print(f"{name}=={want} (have {have})")
PY
}

stamp="$venv/.llama_cmake_args"
need_llama_rebuild=0
if [ "$(cat "$stamp" 2>/dev/null)" != "$llama_cmake_args" ]; then need_llama_rebuild=1; fi
todo=$(unmet)
if [ -z "$todo" ] && [ $need_llama_rebuild -eq 0 ]; then
  echo "setup_venv: $venv already has every pin in $req"
else
  [ -n "$todo" ] && echo "setup_venv: installing: $(echo $todo)"
  [ $need_llama_rebuild -eq 1 ] && echo "setup_venv: (re)building llama-cpp-python with CMAKE_ARGS=$llama_cmake_args"
  echo "setup_venv: llama-cpp-python compiles llama.cpp (about 10 minutes on 2 cores)"
  reinstall=()
  [ $need_llama_rebuild -eq 1 ] && reinstall=(--force-reinstall --no-deps --no-cache-dir "$(grep -i '^llama_cpp_python==' "$req")")
  if ((${#reinstall[@]})); then
    CMAKE_ARGS="$llama_cmake_args" CMAKE_BUILD_PARALLEL_LEVEL=2 "$venv/bin/pip" install -q "${reinstall[@]}"
  fi
  CMAKE_ARGS="$llama_cmake_args" CMAKE_BUILD_PARALLEL_LEVEL=2 "$venv/bin/pip" install -q -r "$req"
  echo "$llama_cmake_args" > "$stamp"
  todo=$(unmet)
  if [ -n "$todo" ]; then
    echo "setup_venv: still unmet after install: $todo" >&2
    exit 1
  fi
fi
"$venv/bin/python" -c 'import torch, numpy, transformers, llama_cpp, safetensors, gguf, sentencepiece
print(f"setup_venv: ok: torch {torch.__version__}, numpy {numpy.__version__}, transformers {transformers.__version__}, llama_cpp_python {llama_cpp.__version__}")'
