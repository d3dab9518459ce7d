#!/usr/bin/env bash
# Packed parity on every recipe: trains the teacher and each distillation recipe, exports each
# with `bitmaps-export` (the default export; EXPORTS="fp32 int8_g64 ..." adds an export per
# --embeddings value), and evaluates source and packed archives with `allennlp evaluate` on the
# same files and masks. The recipes train their word and position tables int8 (lib.recipe), which
# every export stores as trained, so the extra exports matter only for a model trained with
# tables="fp32" (results/packed_parity_full_fp32_tables.json: the recipes as they trained before).
# STEPS=N: a SHORT budget (N steps per epoch, 1 epoch; the configs otherwise), whose perplexities
# measure parity only (does the packed file compute what the trained model computes?), on
# WikiText-2 valid and test. STEPS=full: the configs' own budgets (README's recipe table, about
# 2 hours on 2 CPU cores), on WikiText-2 and PTB, valid and test.
# Usage: [EXPORTS="..."] bash scripts/packed_parity.sh [RUNS_DIR] [STEPS] [RESULT_JSON]
#   (default: runs/parity 20; the result results/packed_parity.json, results/packed_parity_full.json for STEPS=full)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs/parity}
STEPS=${2:-20}
ALLENNLP=".venv/bin/allennlp"
PYTHON=".venv/bin/python"
mkdir -p "$RUNS"
if [ "$STEPS" = full ]; then
  budget='"trainer.checkpointer.keep_most_recent_by_count": 1'
  splits=(--split "WikiText-2 valid" --split "WikiText-2 test" --split "PTB valid" --split "PTB test")
else
  budget="\"data_loader.batches_per_epoch\": $STEPS, \"trainer.num_epochs\": 1, \"trainer.learning_rate_scheduler.warmup_steps\": 2, \"validation_dataset_reader.max_instances\": 64"
  splits=(--split "WikiText-2 valid" --split "WikiText-2 test")
fi

train() {  # train CONFIG DIR OVERRIDES: skips a finished run, resumes an interrupted one
  if [ -f "$2/model.tar.gz" ]; then echo "$2: already trained"
  elif [ -f "$2/config.json" ]; then "$ALLENNLP" train "$1" -s "$2" --recover -o "{$3}"
  else rm -rf "$2"; "$ALLENNLP" train "$1" -s "$2" -o "{$3}"; fi
}
train training_configs/teacher_minilm_mlm.jsonnet "$RUNS/teacher" "$budget"
recipe() {  # recipe CONFIG NAME INIT
  train "training_configs/$1.jsonnet" "$RUNS/$2" "$budget, \"model.teacher\": \"$RUNS/teacher/model.tar.gz\", \"model.initializer.regexes.0.1.weights_file_path\": \"$3\""
  [ -f "$RUNS/$2/packed.tar.gz" ] || "$ALLENNLP" bitmaps-export "$RUNS/$2/model.tar.gz" "$RUNS/$2/packed.tar.gz"
  for e in ${EXPORTS:-}; do
    [ -f "$RUNS/$2/packed_$e.tar.gz" ] || "$ALLENNLP" bitmaps-export "$RUNS/$2/model.tar.gz" "$RUNS/$2/packed_$e.tar.gz" --embeddings "$e"
  done
}
recipe xnor_w1_distill xnor_w1 "$RUNS/teacher/best.th"
recipe bit_stage1_w1a8 bit_stage1 "$RUNS/teacher/best.th"
recipe bitnet_b158_w158a8 bitnet_b158 "$RUNS/teacher/best.th"
recipe bibert_w1a1 bibert_w1a1 "$RUNS/teacher/best.th"
recipe bit_stage2_w1a1 bit_stage2 "$RUNS/bit_stage1/model.tar.gz"
# the whole files: training capped validation at 64 blocks, which the archives remember
whole='{"validation_dataset_reader.max_instances": null}'
models=()
for run in xnor_w1 bit_stage1 bitnet_b158 bibert_w1a1 bit_stage2; do
  models+=(--model "$run=$RUNS/$run/model.tar.gz" --overrides "$run=$whole")
  models+=(--model "$run, packed=$RUNS/$run/packed.tar.gz" --overrides "$run, packed=$whole")
  for e in ${EXPORTS:-}; do
    models+=(--model "$run, packed $e tables=$RUNS/$run/packed_$e.tar.gz" --overrides "$run, packed $e tables=$whole")
  done
done
"$PYTHON" scripts/perplexity_table.py --out "$RUNS/table" "${splits[@]}" "${models[@]}"
# every evaluation in the table folder as records, with bits and training provenance
if [ "$STEPS" = full ]; then default=results/packed_parity_full.json; else default=results/packed_parity.json; fi
"$PYTHON" scripts/parity_results.py "$RUNS" "${3:-$default}"
