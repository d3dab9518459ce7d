#!/usr/bin/env bash
# The packed encoder forward (benchmarks/encoder_revisions.cpp: random weights, batch 1 x seq 128)
# on several revisions of runtime/csrc, interleaved: each revision's core is built with the flags
# setup.py uses, then the binaries run in turn for ROUNDS rounds (each a median of CALLS forwards
# per scheme). Saves OUT (default benchmarks/results/encoder_revisions.json: rounds, medians, CPU, kernel path).
# x86 (every instruction set the revision and the CPU have); BITMAPS_KERNELS forces a path as in the runtime.
# Usage: ROUNDS=7 CALLS=15 THREADS=1 SHAPES="minilm bert-base" SCHEMES="1 3" \
#          bash benchmarks/encoder_revisions.sh REV [REV...]      (scheme ids: runtime/csrc/linear.h)
[ $# -ge 1 ] || { echo "usage: bash benchmarks/encoder_revisions.sh REV [REV...]" >&2; exit 2; }
source "$(dirname "$0")/revisions.sh"
for rev in "$@"; do
  prepare_revision "$rev"
  revision_objects "$rev"
  g++ "${flags[@]}" -I"$csrc" benchmarks/encoder_revisions.cpp "${objects[@]}" -pthread -o "$dir/bench"
done
for round in $(seq "${ROUNDS:-7}"); do
  for shape in ${SHAPES:-minilm bert-base}; do
    for rev in "$@"; do
      commit=$(revision_name "$rev")
      ms=$("$work/$rev/bench" "$shape" "${THREADS:-1}" "${CALLS:-15}" ${SCHEMES:-1 3})
      echo "{\"rev\": \"$rev\", \"commit\": \"$commit\", \"shape\": \"$shape\", \"round\": $round, \"ms\": $ms}"
    done
  done
done | tee "$work/rounds.jsonl"
python3 - "$work/rounds.jsonl" "${THREADS:-1}" "${OUT:-benchmarks/results/encoder_revisions.json}" <<'PY'
import json, platform, statistics, sys
rounds = [json.loads(line) for line in open(sys.argv[1])]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
family = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("cpu family")), "?")
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model\t")), "?")
flags = next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), [])
results = {}
for r in rounds:
    results.setdefault(r["shape"], {}).setdefault(r["commit"], []).append(r["ms"])
medians = {shape: {commit: {k: statistics.median(x[k] for x in rs) for k in rs[0] if k != "path"}
                   for commit, rs in by_commit.items()} for shape, by_commit in results.items()}
out = {"what": "packed encoder forward, batch 1 x seq 128, random weights, per revision of runtime/csrc; "
               "median over rounds of each round's median ms (keys: scheme ids of runtime/csrc/linear.h)",
       "cpu": cpu, "cpu_family": family, "cpu_model": model, "avx512": any(f.startswith("avx512") for f in flags),
       "kernel_path": rounds[0]["ms"]["path"], "threads": int(sys.argv[2]), "medians_ms": medians, "rounds": rounds}
json.dump(out, open(sys.argv[3], "w"), indent=1)
for shape, by_commit in medians.items():
    for commit, m in by_commit.items():
        print(shape, commit, {k: round(v, 2) for k, v in m.items()})
PY
