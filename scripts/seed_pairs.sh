#!/usr/bin/env bash
# Whether a change that should compute the same thing moved a short training run's result beyond
# its seed-to-seed spread: trains CONFIG (default the demo's) at commit BASE (from a temporary
# worktree) and at the working tree, once per seed (AllenNLP's random, numpy and torch seeds all
# set to it), and writes each run's final validation perplexity to OUT as JSON. A training run is
# deterministic for a given build and seed on one machine, so a pair that differs shows that the
# builds compute differently, and the spread across seeds shows how much that can matter.
# Needs ../shared/data. About 3 minutes a seed for the demo on 2 cores.
# Usage: BASE=10bc6e7 [SEEDS="1 2 3 4"] [CONFIG=training_configs/demo_binary_bert_mlm.jsonnet] OUT=results/x.json bash scripts/seed_pairs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
base=${BASE:?set BASE, the commit to compare the working tree with}
out=$(realpath -m "${OUT:?set OUT, the JSON to write}")
config=${CONFIG:-training_configs/demo_binary_bert_mlm.jsonnet}
seeds=${SEEDS:-1 2 3 4}
data=$(realpath ../shared/data)
[ -d "$data/wikitext-2" ] || { echo "needs ../shared/data (WikiText-2 and models/all-MiniLM-L6-v2)" >&2; exit 2; }
work=$(mktemp -d)
trap 'git -C "$repo" worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add -q --detach "$work/base" "$base"
ln -s "$data/.." "$work/shared"  # the worktree's configs read REPO/../shared/data
records="$work/records.jsonl"
mkdir -p "$work/runs"
for seed in $seeds; do
  for build in base head; do
    tree=$([ "$build" = base ] && echo "$work/base" || echo "$repo")
    run="$work/runs/${build}_$seed"
    overrides="{\"random_seed\": $seed, \"numpy_seed\": $seed, \"pytorch_seed\": $seed}"
    (cd "$tree" && PYTHONPATH="$tree" "$repo/.venv/bin/allennlp" train "$config" -s "$run" --force -o "$overrides" \
      > "$run.log" 2>&1) || { echo "training failed: $run.log" >&2; tail -20 "$run.log" >&2; exit 1; }
    "$repo/.venv/bin/python" - "$run/metrics.json" "$build" "$seed" "$(git -C "$tree" rev-parse --short HEAD)" >> "$records" <<'PY'
import json, sys
metrics = json.load(open(sys.argv[1]))
print(json.dumps({"build": sys.argv[2], "seed": int(sys.argv[3]), "commit": sys.argv[4],
                  "validation_perplexity": metrics["validation_perplexity"],
                  "training_duration": metrics.get("training_duration")}))
PY
    tail -1 "$records"
  done
done
"$repo/.venv/bin/python" - "$records" "$out" "$config" "$(git rev-parse --short HEAD)" <<'PY'
import json, platform, sys
sys.path.insert(0, "scripts")
from atomic_json import write_json
records = [json.loads(line) for line in open(sys.argv[1])]
pairs = {}
for r in records:
    pairs.setdefault(r["seed"], {})[r["build"]] = r["validation_perplexity"]
fields = dict(line.split(":", 1) for line in open("/proc/cpuinfo").read().split("\n\n")[0].splitlines() if ":" in line)
fields = {k.strip(): v.strip() for k, v in fields.items()}
cpu = f"{fields.get('model name')} (family {fields.get('cpu family')}, model {fields.get('model')})"
ratios = {seed: p["head"] / p["base"] for seed, p in pairs.items()}
for seed, ratio in ratios.items():
    print(f"seed {seed}: base {pairs[seed]['base']:.2f}, working tree {pairs[seed]['head']:.2f}, ratio {ratio:.4f}")
write_json(sys.argv[2], {
    "what": "final validation perplexity of CONFIG trained at BASE and at the working tree, per seed",
    "config": sys.argv[3], "working_tree_head": sys.argv[4], "records": records,
    "head_over_base": {str(k): round(v, 5) for k, v in ratios.items()},
    "machine": {"cpu": cpu, "python": platform.python_version()},
})
print(f"wrote {sys.argv[2]}")
PY
