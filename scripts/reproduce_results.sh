#!/usr/bin/env bash
# Reproduces README's results table: trains the teacher and the binarized student (skipping a
# finished run, resuming an interrupted one), exports the student as a packed 1-bit archive, and
# evaluates everything on WikiText-2 and PTB valid/test. Several hours on 2 CPU cores.
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
student_init="{\"model.initializer.regexes\": [[\".*\", {\"type\": \"pretrained\", \"weights_file_path\": \"$RUNS/teacher/best.th\"}]]}"

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
