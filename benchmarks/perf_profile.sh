#!/usr/bin/env bash
# Where a packed archive's encoder forward spends its time by function (Linux `perf`, sampling):
# batch 1 x seq 128, 1 thread, CALLS forwards through the runtime's Python binding on the kernel
# path BITMAPS_KERNELS names (default: this CPU's), then the functions over 0.5% of the samples
# as JSON in OUT (with the CPU and the path). Complements profile_runtime.py's phases: it names
# the kernels inside a phase. Needs `perf` (linux-perf) and permission to record.
# Usage: [CALLS=2000] [BITMAPS_KERNELS=avx2] bash benchmarks/perf_profile.sh ARCHIVE OUT
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: bash benchmarks/perf_profile.sh ARCHIVE OUT" >&2; exit 2; }
cd "$(dirname "$0")/.."
command -v perf > /dev/null || { echo "perf is not installed (apt-get install linux-perf)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/forward.py" <<'PY'
import sys
sys.path.insert(0, "benchmarks")
import numpy as np
from bench_runtime import packed_model
from bitmaps_runtime.encoder import PackedEncoder
encoder = PackedEncoder(packed_model(sys.argv[1]), source=sys.argv[1])
ids = np.random.default_rng(0).integers(1000, 30000, (1, 128))
mask = np.ones((1, 128), np.int32)
for _ in range(int(sys.argv[2])):
    encoder.hidden_states(ids, mask, threads=1)
PY
perf record -q -F 2000 -o "$work/perf.data" .venv/bin/python "$work/forward.py" "$1" "${CALLS:-2000}" > /dev/null 2>&1
perf report -i "$work/perf.data" --no-children --sort symbol --stdio 2> /dev/null > "$work/report.txt"
.venv/bin/python - "$work/report.txt" "$2" "$1" <<'PY'
import re, sys
sys.path[:0] = ["benchmarks", "scripts"]
from atomic_json import write_json
from timing import cpu_name
from bitmaps_runtime.native import backend
rows = []
for line in open(sys.argv[1]):
    m = re.match(r"\s*([\d.]+)%\s+\[\.\]\s+(.*?)\s*$", line)
    if m and float(m.group(1)) >= 0.5:
        name = re.sub(r"\(anonymous namespace\)::", "", m.group(2))
        rows.append({"percent": float(m.group(1)), "function": name[:200]})
write_json(sys.argv[2], {"what": "perf samples by function, packed encoder forward, batch 1 x 128, 1 thread",
                         "archive": sys.argv[3], "cpu": cpu_name(), "kernel_path": backend(), "functions": rows})
for r in rows[:12]:
    print(f"{r['percent']:6.2f}%  {r['function'][:110]}")
PY
