#!/usr/bin/env bash
# The int8-input linears (W1A8, ternary W1.58A8) at M rows (default 128), 1 thread, against vpdpbusd's peak on
# an AVX-512 VNNI CPU (benchmarks/int8_products.cpp): how close the path's layers run to the
# instruction that bounds them and ONNX Runtime's int8 GEMM alike. The working tree's runtime/csrc,
# built by runtime/tests/build_native_tests.sh (setup.py's flags). Saves OUT (default
# benchmarks/results/int8_products.json) with the CPU's name, family and model. x86.
# Usage: [ROUNDS=21] [M=128] [BITMAPS_KERNELS=avx2] [OUT=...] bash benchmarks/int8_products.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bash runtime/tests/build_native_tests.sh "$work/tk" > /dev/null
flags=(-O3 -std=c++17 -ffp-contract=off)
g++ "${flags[@]}" -mavx512f -mavx512bw -mavx512vnni -c benchmarks/int8_peak_vnni.cpp -o "$work/peak.o"
g++ "${flags[@]}" -Iruntime/csrc benchmarks/int8_products.cpp "$work/peak.o" "$work"/native_test_objects_tk/*.o \
  -pthread -o "$work/bench"
"$work/bench" "${ROUNDS:-21}" "${M:-128}" > "$work/result.json"
python3 - "$work/result.json" "${OUT:-benchmarks/results/int8_products.json}" <<'PY'
import json, sys
sys.path.insert(0, "benchmarks")
from timing import cpu_name
from pathlib import Path
result = json.load(open(sys.argv[1]))
result = {"what": f"W1A8 and W1.58A8 linears at {result['rows']} rows through run_linear, 1 thread, medians; "
          "G int8 multiply-adds a second, and vpdpbusd's alone", "cpu": cpu_name(), **result}
Path(sys.argv[2]).write_text(json.dumps(result, indent=2) + "\n")
peak = result["vpdpbusd_peak_gmacs"]
print(result["cpu"], result["isa"], "vpdpbusd peak", peak, "G/s")
for shape, r in result["layers"].items():
    share = f" ({r['w1a8_gmacs'] / peak:.0%} / {r['w158a8_gmacs'] / peak:.0%} of the peak)" if peak else ""
    print(f"  {shape}: W1A8 {r['w1a8_us']} us {r['w1a8_gmacs']} G/s, W1.58A8 {r['w158a8_us']} us {r['w158a8_gmacs']} G/s{share}")
PY
