#!/usr/bin/env bash
# A trained packed archive's encoder forward (batch BATCH x seq SEQ, default 1 x 128, the torch-free runtime) on several
# revisions of the runtime, interleaved: each revision's `bitmaps_runtime` extension is built from
# its own runtime/ (setup.py, every instruction set this CPU has; WORKTREE: the working tree's),
# then one process per revision times CALLS forwards in turn, for ROUNDS rounds. Where the random
# weights of encoder_revisions.sh do not reach a code path (BiT's quantized attention, say), this
# times it on the model that takes it. Saves OUT (default
# benchmarks/results/archive_revisions.json: rounds, each revision's median, the CPU, the path).
# ARCHIVE may also be a packed model file (MODEL.safetensors: benchmarks/profile_runtime.py
# --recipe-knobs --write DIR writes the W1A1 recipes' quantizers on random weights).
# Usage: ROUNDS=7 CALLS=15 THREADS=1 [BATCH=1 SEQ=128] [BITMAPS_KERNELS=avx2] [OUT=...] \
#          bash benchmarks/archive_revisions.sh ARCHIVE REV [REV...]     (e.g. runs/x/packed.tar.gz 22cab54 WORKTREE)
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: bash benchmarks/archive_revisions.sh ARCHIVE REV [REV...]" >&2; exit 2; }
cd "$(dirname "$0")/.."
archive=$(realpath "$1")
shift
python="$(pwd)/.venv/bin/python"  # not its realpath: the link is what makes it the venv
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for rev in "$@"; do
  mkdir -p "$work/$rev"
  if [ "$rev" = WORKTREE ]; then cp -r runtime "$work/$rev/"; rm -rf "$work/$rev/runtime/build"
  else git archive "$rev" runtime | tar -x -C "$work/$rev"; fi
  (cd "$work/$rev/runtime" && "$python" setup.py build_ext --inplace > "$work/$rev/build.log" 2>&1) ||
    { echo "$rev: the extension did not build (see below)" >&2; tail -20 "$work/$rev/build.log" >&2; exit 1; }
done
cat > "$work/time.py" <<'PY'
import json, statistics, sys, time
import numpy as np
from bitmaps_runtime.archive import load_packed_archive
from bitmaps_runtime.encoder import PackedEncoder
from bitmaps_runtime.native import backend
archive, threads, calls, batch, seq = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
if archive.endswith(".safetensors"):  # a packed model file (profile_runtime.py --write)
    from bitmaps_runtime.file_format import read_packed_model
    encoder = PackedEncoder(read_packed_model(archive))
else:
    encoder = PackedEncoder(load_packed_archive(archive).packed)
ids = np.random.default_rng(0).integers(1000, 30000, (batch, seq))
mask = np.ones((batch, seq), np.int32)
encoder.hidden_states(ids, mask, threads=threads)  # warm-up: buffers, weight layouts
times = []
for _ in range(calls):
    start = time.perf_counter()
    encoder.hidden_states(ids, mask, threads=threads)
    times.append((time.perf_counter() - start) * 1e3)
print(json.dumps({"ms": statistics.median(times), "path": backend()}))
PY
for round in $(seq "${ROUNDS:-7}"); do
  for rev in "$@"; do
    commit=$(if [ "$rev" = WORKTREE ]; then echo WORKTREE; else git rev-parse --short "$rev"; fi)
    result=$(cd "$work" && PYTHONPATH="$work/$rev/runtime" "$python" "$work/time.py" "$archive" "${THREADS:-1}" "${CALLS:-15}" "${BATCH:-1}" "${SEQ:-128}")
    echo "{\"rev\": \"$rev\", \"commit\": \"$commit\", \"round\": $round, \"result\": $result}"
  done
done | tee "$work/rounds.jsonl"
"$python" - "$work/rounds.jsonl" "$archive" "${THREADS:-1}" "${OUT:-benchmarks/results/archive_revisions.json}" "${BATCH:-1}" "${SEQ:-128}" <<'PY'
import json, statistics, sys
sys.path.insert(0, "benchmarks")
from timing import cpu_name
rounds = [json.loads(line) for line in open(sys.argv[1])]
medians = {}
for r in rounds:
    medians.setdefault(r["commit"], []).append(r["result"]["ms"])
out = {"what": f"a packed archive's encoder forward, batch {sys.argv[5]} x seq {sys.argv[6]}, per revision of the runtime; "
               "median over rounds of each round's median of CALLS forwards, revisions interleaved by round",
       "archive": sys.argv[2], "threads": int(sys.argv[3]), "batch": int(sys.argv[5]), "seq": int(sys.argv[6]), "cpu": cpu_name(), "kernel_path": rounds[0]["result"]["path"],
       "revisions": {c: {"rounds_ms": ms, "median_ms": statistics.median(ms),
                         "spread_ms": [min(ms), max(ms)]} for c, ms in medians.items()}}
tmp = sys.argv[4] + ".tmp"
json.dump(out, open(tmp, "w"), indent=1)
import os
os.replace(tmp, sys.argv[4])
for commit, m in out["revisions"].items():
    print(f"{commit}: median {m['median_ms']:.3f} ms (rounds {m['spread_ms'][0]:.3f}-{m['spread_ms'][1]:.3f})")
PY
