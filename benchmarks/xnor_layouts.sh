#!/usr/bin/env bash
# W1A1's weight layouts against each other on this CPU (benchmarks/xnor_layouts.cpp): one linear at
# M rows (default 128) at MiniLM's and BERT-base's shapes, single-threaded, every kernel path and
# layout the CPU has, checked bit for bit, then medians of ROUNDS interleaved calls. The working
# tree's runtime/csrc, built by runtime/tests/build_native_tests.sh (setup.py's flags). Saves OUT
# (default benchmarks/results/xnor_layouts.json) with the CPU's name, family and model.
# Usage: [M=128] [ROUNDS=31] [OUT=...] bash benchmarks/xnor_layouts.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bash runtime/tests/build_native_tests.sh "$work/tk" > /dev/null
g++ -O3 -std=c++17 -ffp-contract=off -Iruntime/csrc benchmarks/xnor_layouts.cpp "$work"/native_test_objects_tk/*.o \
  -pthread -o "$work/bench"
"$work/bench" "${M:-128}" "${ROUNDS:-31}" > "$work/result.json"
python3 - "$work/result.json" "${OUT:-benchmarks/results/xnor_layouts.json}" <<'PY'
import json, sys
sys.path.insert(0, "benchmarks")
from timing import cpu_name
from pathlib import Path
result = json.load(open(sys.argv[1]))
result = {"what": "one W1A1 linear per weight layout and kernel path, 1 thread, medians in microseconds", "cpu": cpu_name(), **result}
Path(sys.argv[2]).write_text(json.dumps(result, indent=2) + "\n")
for shape, variants in result["us"].items():
    print(shape, ", ".join(f"{name} {us:.1f} us" for name, us in variants.items()))
PY
