#!/usr/bin/env bash
# Builds and runs every test: release unit/golden tests, the reader and tokenizer tests again under
# ASan+UBSan, and a short libFuzzer run of every fuzz target.
#   scripts/test.sh                      everything (what CI runs)
#   RTNQ_FUZZ_SECONDS=0 scripts/test.sh  skip fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export RTNQ_DATA="${RTNQ_DATA:-$(cd .. && pwd)/shared/data}"

echo "== release tests"
ctest --preset release -j2 --timeout 600

echo "== sanitizer tests (ASan + UBSan)"
cmake --preset debug >/dev/null
cmake --build --preset debug
ctest --preset debug -j2 --timeout 900

fuzz_seconds="${RTNQ_FUZZ_SECONDS:-20}"
if [ "$fuzz_seconds" -gt 0 ]; then
  echo "== fuzzing, ${fuzz_seconds}s per target"
  cmake --preset fuzz >/dev/null
  cmake --build --preset fuzz
  for bin in build/fuzz/fuzz/*_fuzz; do
    name=$(basename "$bin")
    corpus=$(mktemp -d)
    [ -d "fuzz/corpus/$name" ] && cp -r "fuzz/corpus/$name/." "$corpus/"
    echo "-- $name"
    "$bin" -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=0 \
      "$corpus" 2>&1 | tail -n 2
    rm -rf "$corpus"
  done
fi
echo "== all tests passed"
