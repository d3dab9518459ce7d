#!/usr/bin/env bash
# The training-throughput issue's before/after: one distillation step of BiT stage 1 (16 blocks of
# 128, 2 threads) timed by commit 24827ed's code, the first measurement's, and by the working
# tree's, in PAIRS alternating processes (before, then after), each after-process right behind its
# before-process so that both see the same host phase (the VMs drift by up to 1.6x between
# minutes: read each pair's ratio, not the milliseconds). Appends every process's record to OUT
# (default benchmarks/results/distillation_step.json) with LABEL (say, the CPU and the session) in
# its label, and prints each pair's ratio and their median.
#
# "Before" runs 24827ed's benchmarks/profile_distillation_step.py from a copy of that commit (its
# own bitmaps_allennlp first on PYTHONPATH), with two changes (the patch below): the optimizer the
# recipes then trained with (`huggingface_adamw`, transformers.AdamW, where the script had
# torch.optim.AdamW), and reading the block length with a default (AllenNLP's Params had emptied
# the reader's config, so the script failed after timing). "After" runs the working tree's script
# with `--variants compiled`, the recipe's `compile_layers`. Needs ../shared/data (WikiText-2 and
# the MiniLM encoder). About 2 minutes a pair on 2 cores.
# Usage: [PAIRS=6] [STEPS=6] [OUT=...] LABEL="Zen 4, session 21" bash benchmarks/distillation_step_pairs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
python="$repo/.venv/bin/python"
data=$(realpath ../shared/data)
[ -d "$data/wikitext-2" ] || { echo "needs ../shared/data (WikiText-2 and models/all-MiniLM-L6-v2)" >&2; exit 2; }
base=24827ed
out=$(realpath -m "${OUT:-benchmarks/results/distillation_step.json}")
label=${LABEL:?set LABEL, e.g. LABEL="Zen 4, session 21"}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/before"
git archive "$base" | tar -x -C "$work/before"
ln -s "$data/.." "$work/shared"  # the old script finds the data at REPO/../shared
(cd "$work/before" && patch -s -p1) <<'PATCH'
--- a/benchmarks/profile_distillation_step.py
+++ b/benchmarks/profile_distillation_step.py
@@ -88,7 +88,8 @@
         config, model, reader, vocab, batch_size = _build(args.recipe, teacher, args.batch_size)
         model.train()
         trainer = config["trainer"]
-        optimizer = torch.optim.AdamW(
+        import transformers  # the recipes' optimizer at this commit: huggingface_adamw
+        optimizer = transformers.AdamW(
             [p for p in model.parameters() if p.requires_grad], lr=trainer["optimizer"]["lr"], weight_decay=0.0
         )
         batches = _batches(reader, vocab, args.data, batch_size)
@@ -132,7 +133,7 @@
         top = profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=18)
 
     medians = {name: statistics.median(values) for name, values in phases.items()}
-    print(f"recipe {args.recipe}, {batch_size} blocks of {config['dataset_reader']['max_length']}, "
+    print(f"recipe {args.recipe}, {batch_size} blocks of {config['dataset_reader'].get('max_length', 128)}, "
           f"torch threads {torch.get_num_threads()}, {args.steps} steps")
     for name, value in medians.items():
         spread = (min(phases[name]), max(phases[name]))
@@ -142,7 +143,7 @@
         "label": args.label,
         "recipe": args.recipe,
         "blocks_per_step": batch_size,
-        "block_length": config["dataset_reader"]["max_length"],
+        "block_length": config["dataset_reader"].get("max_length", 128),
         "torch_threads": torch.get_num_threads(),
         "steps": args.steps,
         "median_ms": {name: round(value * 1000, 1) for name, value in medians.items()},
PATCH
head=$(git rev-parse --short HEAD)
dirty=$(git diff --quiet HEAD -- bitmaps_allennlp training_configs benchmarks/profile_distillation_step.py || echo "+changes")
steps=${STEPS:-6}
for pair in $(seq "${PAIRS:-6}"); do
  (cd "$work/before" && PYTHONPATH="$work/before" "$python" benchmarks/profile_distillation_step.py \
    --recipe bit_stage1_w1a8 --steps "$steps" --data "$data/wikitext-2/train.txt" --output "$work/before.json" \
    --label "before: commit $base (transformers.AdamW, as the recipes then trained), $label, pair $pair") > "$work/log" 2>&1 ||
    { tail -20 "$work/log" >&2; exit 1; }
  "$python" benchmarks/profile_distillation_step.py --recipe bit_stage1_w1a8 --steps "$steps" --variants compiled \
    --data "$data/wikitext-2/train.txt" --output "$work/after.json" \
    --label "after: commit $head$dirty, compiled, $label, pair $pair" > "$work/log" 2>&1 || { tail -20 "$work/log" >&2; exit 1; }
  "$python" - "$work/before.json" "$work/after.json" "$pair" <<'PY'
import json, sys
before, after = (json.load(open(p))[-1] for p in sys.argv[1:3])
b, a = before["median_ms"]["step"], after["median_ms"]["compiled"]["step"]
print(f"pair {sys.argv[3]}: before {b:.0f} ms, after {a:.0f} ms, {b / a:.2f}x", flush=True)
PY
done
"$python" - "$work/before.json" "$work/after.json" "$out" <<'PY'
import json, statistics, sys
from pathlib import Path
sys.path.insert(0, "scripts")
from atomic_json import write_json
before, after = (json.load(open(p)) for p in sys.argv[1:3])
ratios = [b["median_ms"]["step"] / a["median_ms"]["compiled"]["step"] for b, a in zip(before, after)]
print(f"{len(ratios)} pairs, before / after per pair: {', '.join(f'{r:.2f}x' for r in ratios)}; median {statistics.median(ratios):.2f}x")
out = Path(sys.argv[3])
previous = json.loads(out.read_text()) if out.is_file() else []
records = [record for pair in zip(before, after) for record in pair]
write_json(str(out), previous + records)
print(f"appended {len(records)} records to {out}")
PY
