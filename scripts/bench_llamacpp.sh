#!/usr/bin/env bash
# rtnq RTN-4/RTN-8 against llama.cpp Q4_0/Q8_0 on this CPU (prefill 512 tokens, decode 128; threads
# 1 and 2; median of 3). Not part of CI. Method and results: docs/llamacpp-comparison.md.
#   scripts/bench_llamacpp.sh                 the whole comparison -> out/bench_llamacpp.json
#   scripts/bench_llamacpp.sh --threads 1,2,4 --repeats 5     (any scripts/bench_llamacpp.py flag)
#   RTNQ_BIN=build/other/tools/rtnq/rtnq scripts/bench_llamacpp.sh
# Needs the project venv (scripts/setup_venv.sh: llama-cpp-python built for AVX2, gguf-py) and an
# rtnq Release build. On first use it compiles a second llama-cpp-python with AVX-512 into
# out/llamacpp-avx512 (pip from PyPI; ~15 minutes on 2 cores) so that llama.cpp runs at its best on
# an AVX-512 CPU; if that build faults at run time the benchmark falls back to the venv's AVX2 build
# and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
export RTNQ_BIN="${RTNQ_BIN:-build/release/tools/rtnq/rtnq}"
venv=.venv
py="$venv/bin/python"

if ! "$py" -c 'import llama_cpp, gguf' 2>/dev/null; then
  scripts/setup_venv.sh
fi
if [ ! -x "$RTNQ_BIN" ]; then
  echo "bench_llamacpp: no rtnq at $RTNQ_BIN: build it first (cmake --preset release &&" \
       "cmake --build --preset release --target rtnq) or set RTNQ_BIN" >&2
  exit 1
fi

# llama.cpp at its best on an AVX-512 (VNNI, BF16) CPU, AMX off: GGML_NATIVE=ON would also enable
# AMX, whose Q8_0 path dies with SIGILL inside this sandbox (see scripts/setup_venv.sh). OpenMP on
# (llama.cpp's default threading). Q4_0 weights are repacked at load (GGML_CPU_REPACK, default on).
llama_version=$(grep -i '^llama_cpp_python==' requirements-ref.txt | cut -d= -f3)
avx512_dir=out/llamacpp-avx512
avx512_args="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DGGML_OPENMP=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF"
stamp="$avx512_dir/.rtnq_cmake_args"
want_stamp="llama_cpp_python==$llama_version $avx512_args"
if grep -q avx512f /proc/cpuinfo && [ "${BENCH_LLAMACPP_NO_AVX512:-0}" != 1 ]; then
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want_stamp" ]; then
    echo "bench_llamacpp: building llama_cpp_python==$llama_version with AVX-512 into $avx512_dir"
    echo "  CMAKE_ARGS=$avx512_args"
    rm -rf "$avx512_dir.tmp"
    CMAKE_ARGS="$avx512_args" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
      nice -n 10 "$venv/bin/pip" install -q --no-deps --no-cache-dir --target "$avx512_dir.tmp" \
      "llama_cpp_python==$llama_version"
    echo "$want_stamp" > "$avx512_dir.tmp/.rtnq_cmake_args"
    rm -rf "$avx512_dir"
    mv "$avx512_dir.tmp" "$avx512_dir"
  else
    echo "bench_llamacpp: using $avx512_dir (llama_cpp_python==$llama_version, AVX-512; built before)"
  fi
else
  echo "bench_llamacpp: no AVX-512 on this CPU (or BENCH_LLAMACPP_NO_AVX512=1): the venv's AVX2 llama.cpp only"
  set -- --llama-avx512 "" "$@"
fi

echo "bench_llamacpp: load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
exec "$py" scripts/bench_llamacpp.py "$@"
