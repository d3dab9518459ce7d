#!/usr/bin/env bash
# Stand-in archives for re-timing a Pareto report whose trained archives are gone (runs/ does not
# survive between sessions): the teacher, the dense 2-layer student and the real-budget recipes
# (BitNet b1.58, BiT stage 1, BiT stage 2 from stage 1), each config trained 2 steps and the
# recipes exported packed. A kernel does the same work whatever its weights hold, so a stand-in
# times as its trained run would; its perplexity means nothing, and
# `scripts/pareto.py --retime REPORT --stand-in-folders OLD=NEW ...` takes every figure but the
# latency from the earlier report. A few minutes on 2 cores (the teacher's vocabulary and the
# first blocks of WikiText-2 are read by every run).
# Usage: bash scripts/stand_ins.sh [RUNS_DIR]   (default: runs/stand_ins; a finished run is kept)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs/stand_ins}
ALLENNLP=".venv/bin/allennlp"
mkdir -p "$RUNS"
# two steps, a short validation, no compilation (two steps cannot repay it)
tiny='"data_loader.batches_per_epoch": 2, "trainer.num_epochs": 1, "trainer.learning_rate_scheduler.warmup_steps": 1,
  "validation_dataset_reader.max_instances": 16'
student="$tiny"', "model.text_field_embedder.token_embedders.tokens.compile_layers": false'

train() {  # train CONFIG DIR OVERRIDES [dense]: then the packed export (not for a dense model)
  if [ -f "$2/model.tar.gz" ]; then echo "$2: already trained"
  else rm -rf "$2"; "$ALLENNLP" train "$1" -s "$2" -o "{$3}"; fi
  [ "${4:-}" = dense ] || [ -f "$2/packed.tar.gz" ] || "$ALLENNLP" bitmaps-export "$2/model.tar.gz" "$2/packed.tar.gz"
}
train training_configs/teacher_minilm_mlm.jsonnet "$RUNS/teacher" "$tiny" dense
from_teacher="\"model.teacher\": \"$RUNS/teacher/model.tar.gz\", \"model.initializer.regexes.0.1.weights_file_path\": \"$RUNS/teacher/best.th\""
train training_configs/bitnet_b158_w158a8.jsonnet "$RUNS/bitnet_b158" "$student, $from_teacher"
train training_configs/dense_small_distill.jsonnet "$RUNS/dense_small" "$student, $from_teacher" dense
train training_configs/bit_stage1_w1a8.jsonnet "$RUNS/bit_stage1" "$student, $from_teacher"
train training_configs/bit_stage2_w1a1.jsonnet "$RUNS/bit_stage2" "$student, \"model.teacher\": \"$RUNS/bit_stage1/model.tar.gz\", \"model.initializer.regexes.0.1.weights_file_path\": \"$RUNS/bit_stage1/model.tar.gz\""
