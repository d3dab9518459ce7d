#!/usr/bin/env bash
# Reproduces README's results tables: trains the teacher, the binarized student and the
# distillation recipes (skipping a finished run, resuming an interrupted one), exports the
# student as a packed 1-bit archive, and evaluates everything on WikiText-2 and PTB valid/test.
# Several hours on 2 CPU cores.
# Usage: bash scripts/reproduce_results.sh [RUNS_DIR]   (default: runs)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs}
ALLENNLP=".venv/bin/allennlp"
PYTHON=".venv/bin/python"
mkdir -p "$RUNS"

train() {  # train CONFIG DIR [extra allennlp args]
  local config=$1 dir=$2
  shift 2
  if [ -f "$dir/model.tar.gz" ]; then
    echo "$dir: already trained"
  elif [ -d "$dir" ]; then
    echo "$dir: resuming"
    "$ALLENNLP" train "$config" -s "$dir" --recover "$@"
  else
    "$ALLENNLP" train "$config" -s "$dir" "$@"
  fi
}

binarize='{"model.text_field_embedder.token_embedders.tokens.binarize": true}'
student_init="{\"model.initializer.regexes\": [[\".*\", {\"type\": \"bitmaps_start_from\", \"weights_file_path\": \"$RUNS/teacher/best.th\"}]]}"

train training_configs/teacher_minilm_mlm.jsonnet "$RUNS/teacher"
"$PYTHON" scripts/perplexity_table.py --out "$RUNS/table" \
  --model "teacher (fp32)=$RUNS/teacher/model.tar.gz" \
  --model "data-free binarized teacher=$RUNS/teacher/model.tar.gz" --overrides "data-free binarized teacher=$binarize"
train training_configs/binary_minilm_mlm.jsonnet "$RUNS/binary" -o "$student_init"
[ -f "$RUNS/binary/packed.tar.gz" ] || "$ALLENNLP" bitmaps-export "$RUNS/binary/model.tar.gz" "$RUNS/binary/packed.tar.gz"
"$PYTHON" scripts/perplexity_table.py --out "$RUNS/table" \
  --model "teacher (fp32)=$RUNS/teacher/model.tar.gz" \
  --model "data-free binarized teacher=$RUNS/teacher/model.tar.gz" --overrides "data-free binarized teacher=$binarize" \
  --model "binarized student, trained=$RUNS/binary/model.tar.gz" \
  --model "binarized student, packed export=$RUNS/binary/packed.tar.gz"

# The recipe zoo (README "Binarization recipes"), each distilled from the teacher.
recipe() {  # recipe CONFIG DIR INIT
  local overrides="{\"model.teacher\": \"$RUNS/teacher/model.tar.gz\", \"model.initializer.regexes.0.1.weights_file_path\": \"$3\"}"
  train "training_configs/$1.jsonnet" "$2" -o "$overrides"
}
recipe xnor_w1_distill "$RUNS/xnor_w1" "$RUNS/teacher/best.th"
# the same recipe continued from its own archive for 500 more steps
train training_configs/xnor_w1_distill.jsonnet "$RUNS/xnor_w1_more" -o "{\"model.teacher\": \"$RUNS/teacher/model.tar.gz\", \"model.initializer.regexes.0.1.weights_file_path\": \"$RUNS/xnor_w1/model.tar.gz\", \"data_loader.batches_per_epoch\": 250, \"trainer.learning_rate_scheduler.warmup_steps\": 25}"
recipe bit_stage1_w1a8 "$RUNS/bit_stage1" "$RUNS/teacher/best.th"
recipe bitnet_b158_w158a8 "$RUNS/bitnet_b158" "$RUNS/teacher/best.th"
recipe bibert_w1a1 "$RUNS/bibert_w1a1" "$RUNS/teacher/best.th"
recipe bit_stage2_w1a1 "$RUNS/bit_stage2" "$RUNS/bit_stage1/model.tar.gz"
"$PYTHON" scripts/perplexity_table.py --out "$RUNS/recipes" \
  --model "teacher (fp32)=$RUNS/teacher/model.tar.gz" \
  --model "data-free binarized teacher=$RUNS/teacher/model.tar.gz" --overrides "data-free binarized teacher=$binarize" \
  --model "XNOR/BWN W1A32=$RUNS/xnor_w1/model.tar.gz" \
  --model "XNOR/BWN W1A32, +500 steps=$RUNS/xnor_w1_more/model.tar.gz" \
  --model "BiT stage 1 W1A8=$RUNS/bit_stage1/model.tar.gz" \
  --model "BitNet b1.58 W1.58A8=$RUNS/bitnet_b158/model.tar.gz" \
  --model "BiBERT W1A1=$RUNS/bibert_w1a1/model.tar.gz" \
  --model "BiT stage 2 W1A1=$RUNS/bit_stage2/model.tar.gz"
for run in xnor_w1 bit_stage1 bitnet_b158 bibert_w1a1 bit_stage2; do
  [ -f "$RUNS/$run/packed.tar.gz" ] || "$ALLENNLP" bitmaps-export "$RUNS/$run/model.tar.gz" "$RUNS/$run/packed.tar.gz"
done
"$PYTHON" scripts/perplexity_table.py --out "$RUNS/recipes" \
  --model "XNOR/BWN W1A32, packed=$RUNS/xnor_w1/packed.tar.gz" \
  --model "BiT stage 1 W1A8, packed=$RUNS/bit_stage1/packed.tar.gz" \
  --model "BitNet b1.58 W1.58A8, packed=$RUNS/bitnet_b158/packed.tar.gz" \
  --model "BiBERT W1A1, packed=$RUNS/bibert_w1a1/packed.tar.gz" \
  --model "BiT stage 2 W1A1, packed=$RUNS/bit_stage2/packed.tar.gz"
