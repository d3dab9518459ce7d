#!/usr/bin/env bash
# One attention head's kernels (benchmarks/attention_kernels.cpp) on several revisions of
# runtime/csrc, interleaved: each revision's core is built with every instruction set this CPU
# has, with its own flags (its build_native_tests.sh), then the binaries run in turn for ROUNDS
# rounds (medians of 2,000 calls each) on the kernel path BITMAPS_KERNELS names (default: this
# CPU's). Saves OUT (default benchmarks/results/attention_kernels.json: the rounds, their medians,
# the CPU, the path). x86.
# Usage: ROUNDS=5 [BITMAPS_KERNELS=avx2] [OUT=...] bash benchmarks/attention_kernels.sh REV [REV...]   (e.g. 6b0aad4 HEAD)
[ $# -ge 1 ] || { echo "usage: bash benchmarks/attention_kernels.sh REV [REV...]" >&2; exit 2; }
source "$(dirname "$0")/revisions.sh"
for rev in "$@"; do
  prepare_revision "$rev"
  revision_objects "$rev"
  g++ "${flags[@]}" -I"$csrc" benchmarks/attention_kernels.cpp "${objects[@]}" -pthread -o "$dir/bench"
done
for round in $(seq "${ROUNDS:-5}"); do
  for rev in "$@"; do
    echo "{\"rev\": \"$rev\", \"commit\": \"$(revision_name "$rev")\", \"round\": $round, \"us\": $("$work/$rev/bench")}"
  done
done | tee "$work/rounds.jsonl"
python3 - "$work/rounds.jsonl" "${OUT:-benchmarks/results/attention_kernels.json}" <<'PY'
import json, statistics, sys
sys.path.insert(0, "benchmarks")
from timing import cpu_name
rounds = [json.loads(line) for line in open(sys.argv[1])]
cpu = cpu_name()  # with family and model: "AMD EPYC" names every generation
medians = {}
for r in rounds:
    medians.setdefault(r["commit"], {}).setdefault("rounds", []).append(r["us"])
for commit, m in medians.items():
    m["median_us"] = {k: statistics.median(x[k] for x in m["rounds"]) for k in m["rounds"][0] if k not in ("check", "isa")}
path = rounds[0]["us"]["isa"]
out = {"what": "one attention head (seq 128, d 32) on one kernel table, per revision; median of rounds of medians of 2,000 calls",
       "cpu": cpu, "kernel_path": path, "revisions": medians}
json.dump(out, open(sys.argv[2], "w"), indent=1)
for commit, m in medians.items():
    print(commit, {k: round(v, 2) for k, v in m["median_us"].items()})
PY
