#!/usr/bin/env bash
# The real-budget runs of the accuracy issue: BiT stage 1 (W1A8), BitNet b1.58 (W1.58A8) and BiT
# stage 2 (W1A1, from stage 1 and with stage 1 as its teacher, as BiT does), each 2,000 steps of 16
# blocks of 128 (10x the configs' budget: 8 epochs of 250 steps), student layers compiled
# (`compile_layers`). Each epoch validates on the first 640 blocks of WikiText-2 valid (the curve);
# each finished run is exported packed (bitmaps-export); scripts/long_results.py scores the final
# archives on whole files and writes the curves, scripts/pareto.py --runs ... runs/long adds them
# to the Pareto report.
# The dense 2-layer student (training_configs/dense_small_distill.jsonnet, full precision) gets the
# same budget, so that "just use a smaller float model" is compared at equal training: score it with
#   python scripts/baselines.py RUNS/dense_small/model.tar.gz --label "dense 2-layer student, 2,000 steps" \
#     --variant fp32 --variant "ONNX Runtime int8" --json results/baselines_dense_long.json
# BitNet b1.58 runs first: it needs only the teacher, the stage-2 chain needs two runs in a row; the
# dense student next (about 1.5 s a step where the 6-layer students take 2).
# results/long_runs.json (peak learning rate 2e-4, 2026-12-01) was trained before the recipes' word
# and position tables became int8 (lib.recipe's tables="int8"), with fp32 tables: check out commit
# 22cab54 to reproduce it. results/long_runs_lr1e-3.json (2026-12-05) trained int8 tables, as this
# script now trains the recipes as configured; results/long_runs_integer_forward.json repeats its
# BiT stage 1 and BitNet b1.58 on the integer forward products and the blocked decoder (2026-12-07/08).
# Resumable: a finished run is skipped, an interrupted one continues with --recover. Keep RUNS
# outside any clean checkout if it must survive one.
# ONLY="bit_stage1 bit_stage2" trains just those runs (names as below), e.g. on a fresh machine
# where the others' results are already committed.
# Usage: [EPOCHS=8] [LR=5e-4] [ONLY="..."] bash scripts/long_runs.sh [RUNS_DIR] [TEACHER_DIR]  (default: runs/long runs/recipes_full/teacher)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs/long}
TEACHER=${2:-runs/recipes_full/teacher}
ALLENNLP=".venv/bin/allennlp"
mkdir -p "$RUNS"
[ -f "$TEACHER/model.tar.gz" ] || { echo "$TEACHER/model.tar.gz: train the teacher first (scripts/packed_parity.sh)"; exit 2; }
EPOCHS=${EPOCHS:-8}  # of 250 steps; EPOCHS=4 is half the budget, for a session too short for 8
budget='"data_loader.batches_per_epoch": 250, "trainer.num_epochs": '"$EPOCHS"', "trainer.learning_rate_scheduler.warmup_steps": 200,
  "validation_dataset_reader.max_instances": 640, "trainer.checkpointer.keep_most_recent_by_count": 1,
  "model.text_field_embedder.token_embedders.tokens.compile_layers": true'
# LR=5e-4 overrides the configs' peak learning rate (lib.recipe: 1e-3 since 2026-12-06, 2e-4
# before; the runs in results/long_runs_lr1e-3.json set LR=1e-3 when 2e-4 was the default). Resume
# a run with the LR it started with: --recover refuses a configuration that differs from the run's
# config.json.
if [ -n "${LR:-}" ]; then budget+=', "trainer.optimizer.lr": '"$LR"; fi

train() {  # train CONFIG DIR OVERRIDES [dense]: skips a finished run, resumes an interrupted one; then
           # the packed export (not for a dense model: nothing in it is binarized)
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $(basename "$2") "* ]]; then echo "$2: not in ONLY"; return; fi
  if [ -f "$2/model.tar.gz" ]; then echo "$2: already trained"
  elif [ -f "$2/config.json" ]; then "$ALLENNLP" train "$1" -s "$2" --recover -o "{$3}"
  else rm -rf "$2"; "$ALLENNLP" train "$1" -s "$2" -o "{$3}"; fi
  [ "${4:-}" = dense ] || [ -f "$2/packed.tar.gz" ] || "$ALLENNLP" bitmaps-export "$2/model.tar.gz" "$2/packed.tar.gz"
}
from_teacher="\"model.teacher\": \"$TEACHER/model.tar.gz\", \"model.initializer.regexes.0.1.weights_file_path\": \"$TEACHER/best.th\""
train training_configs/bitnet_b158_w158a8.jsonnet "$RUNS/bitnet_b158" "$budget, $from_teacher"
train training_configs/dense_small_distill.jsonnet "$RUNS/dense_small" "$budget, $from_teacher" dense
train training_configs/bit_stage1_w1a8.jsonnet "$RUNS/bit_stage1" "$budget, $from_teacher"
train training_configs/bit_stage2_w1a1.jsonnet "$RUNS/bit_stage2" "$budget, \"model.teacher\": \"$RUNS/bit_stage1/model.tar.gz\", \"model.initializer.regexes.0.1.weights_file_path\": \"$RUNS/bit_stage1/model.tar.gz\""
