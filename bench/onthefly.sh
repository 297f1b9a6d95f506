#!/usr/bin/env bash
# Quantization while loading, at scale: a seeded synthetic Llama-3.1-8B-shaped BF16 checkpoint
# (~16 GB, written once by `rtnq synth`) is loaded with --quant rtn8 / rtn4; reports peak RSS
# against the quantized size + KV cache, and the quantizer's rate (GB/s of bf16 input per core).
# With 23 GiB of RAM the 15 GB file does not stay in the page cache next to the model, so those
# rates include the disk. The disk-aside figure comes from the same 8B shapes with fewer layers
# (LAYERS, default 6: 4.4 GiB), read once to warm the page cache, then loaded REPEATS times at 1
# and THREADS threads: median and range of GB/s per core.
#   bench/onthefly.sh [MODEL_DIR] [THREADS]     (default out/synth-llama-3.1-8b, all cores)
#   env: RTNQ_BIN, LAYERS, REPEATS (3), PARTS ("disk cached": which of the two to run)
set -euo pipefail
cd "$(dirname "$0")/.."
rtnq="${RTNQ_BIN:-build/release/tools/rtnq/rtnq}"
model="${1:-out/synth-llama-3.1-8b}"
threads="${2:-$(nproc)}"
layers="${LAYERS:-6}"
repeats="${REPEATS:-3}"
parts="${PARTS:-disk cached}"

# run MODEL THREADS QUANT... -> one JSON line: load stats and peak RSS (bytes). The KV cache of
# these 5-token runs is negligible next to the weights.
run() {
  local dir="$1" t="$2"
  shift 2
  local out
  out=$(mktemp)
  /usr/bin/time -v -o "$out.time" "$rtnq" generate "$dir" --quant "$@" -p "Hello" -n 4 -t "$t" --json > "$out"
  python3 - "$out" "$out.time" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(sys.argv[2]).read()).group(1)) * 1024
load = r["load"]
print(json.dumps({"load": load, "peak": peak}))
PY
  rm -f "$out" "$out.time"
}

if [[ " $parts " == *" disk "* ]]; then
  if [ ! -f "$model/config.json" ]; then
    "$rtnq" synth --shape llama-3.1-8b --seed 0 --dtype bf16 -o "$model" --progress
  fi
  echo "== $model, from disk, $threads threads"
  for quant in rtn8 rtn4 "rtn4 --upcast-layers first:2,last:2"; do
    # shellcheck disable=SC2086
    run "$model" "$threads" $quant | python3 -c '
import json, sys
r = json.loads(sys.stdin.read()); load = r["load"]; t = int(sys.argv[2])
q = load["weight_bytes"]; peak = r["peak"]; src = load["source_bytes"]; secs = load["quantize_seconds"]; rate = load["gb_per_second"]
mapped = load.get("mapped_bytes", 0); touch = load.get("first_touch_seconds", 0)
print(f"--quant {sys.argv[1]:36s} peak RSS {peak/2**30:6.2f} GiB = {peak/q:5.3f} x the weights of the model ({q/2**30:.2f} GiB, "
      f"{mapped/2**30:.2f} GiB of them read in place from the file); "
      f"quantized {src/1e9:.1f} GB in {secs:.1f} s = {rate:.2f} GB/s on {t} threads ({rate/t:.2f} GB/s per core; "
      f"{touch:.1f} s of it faulting in fresh memory)")' "$quant" "$threads"
  done
fi

if [[ " $parts " == *" cached "* ]]; then
  small="${model}-l${layers}"
  if [ ! -f "$small/config.json" ]; then
    "$rtnq" synth --shape llama-3.1-8b --layers "$layers" --seed 0 --dtype bf16 -o "$small" --progress
  fi
  echo "== $small (Llama-3.1-8B shapes, $layers layers), page cache warm (disk aside), $repeats runs each"
  # The loads below include the first touch of the fresh pages of the packed weights; on a VM that cost
  # varies with the host, so show it: 1 GiB of fresh anonymous memory, one write per 4 KiB page,
  # with 4 KiB pages and with MADV_HUGEPAGE (what rtnq asks for; see src/base/aligned_buffer.h).
  python3 - <<'PY'
import mmap, statistics, time
n = 1 << 30
for label, huge in (("4 KiB pages", False), ("MADV_HUGEPAGE", True)):
    secs = []
    for _ in range(3):
        m = mmap.mmap(-1, n)
        if huge:
            m.madvise(mmap.MADV_HUGEPAGE)
        t = time.perf_counter()
        m[::4096] = b"\1" * (n // 4096)
        secs.append(time.perf_counter() - t)
        m.close()
    print(f"first touch of fresh memory, {label}: {statistics.median(secs):.2f} s/GiB "
          f"(median of 3; range {min(secs):.2f}-{max(secs):.2f})")
PY
  for quant in rtn8 rtn4; do
    for t in $(printf '%s\n' 1 "$threads" | sort -un); do
      cat "$small"/*.safetensors > /dev/null  # warm: the runs read the mapping from the page cache
      lines=""
      for _ in $(seq "$repeats"); do lines+="$(run "$small" "$t" "$quant")"$'\n'; done
      printf '%s' "$lines" | python3 -c '
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
t = int(sys.argv[2])
loads = [r["load"] for r in rows]
rates = sorted(l["gb_per_second"] / t for l in loads)
# The same rate without the time spent faulting in the fresh pages of the packed weights, and that
# time per GiB of them (thread-seconds): on a VM it is mostly the host at work.
quantizer = sorted(l["source_bytes"] / 1e9 / (l["quantize_seconds"] - l["first_touch_seconds"]) / t for l in loads)
touch = sorted(l["first_touch_seconds"] * t / (l["quantized_bytes"] / 2**30) for l in loads)
ratios = sorted(r["peak"] / r["load"]["weight_bytes"] for r in rows)
src = loads[0]["source_bytes"]
print(f"--quant {sys.argv[1]:5s} {t} thread(s): {src/1e9:.2f} GB of bf16 quantized at {statistics.median(rates):.2f} GB/s "
      f"per core (median; range {rates[0]:.2f}-{rates[-1]:.2f}); without first touch {statistics.median(quantizer):.2f} "
      f"({quantizer[0]:.2f}-{quantizer[-1]:.2f}); first touch {statistics.median(touch):.2f} s per GiB of packed weights "
      f"({touch[0]:.2f}-{touch[-1]:.2f}); peak RSS {statistics.median(ratios):.3f} x the weights of the model")' "$quant" "$t"
    done
  done
fi
