#!/usr/bin/env bash
# The whole native runtime at two revisions, timed against each other inside one process: the
# working tree's extension and BASE's (its runtime/ as BASE had it, built with its own setup.py,
# its module init renamed so that both load side by side), each forward of the packed model on one
# build and the next on the other, in alternating order (paired_forwards.py). It covers
# what kernel_table_ab.sh cannot: changes to the portable core (encoder.cpp, linear.cpp, the
# threading), on whatever path both builds select. Both builds are driven by the working tree's
# Python package, so BASE's binding must take its calls (recent revisions do; an older one fails
# at the first call that differs, naming it).
# Saves OUT (default benchmarks/results/runtime_ab.json): every pair's milliseconds, the medians and
# quartiles of the ratios base/new, the largest output difference, the CPU and the path.
# COLD_MB=48: each forward after a 48 MB buffer is rewritten (outside its time), with cold caches.
# Usage: [BITMAPS_KERNELS=avx2] [ROUNDS=40] [BATCH=1] [THREADS=1] [COLD_MB=0] [OUT=...] \
#          bash benchmarks/runtime_ab.sh BASE MODEL [MODEL...]   (MODEL: packed file or archive)
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: bash benchmarks/runtime_ab.sh BASE MODEL [MODEL...]" >&2; exit 2; }
source "$(dirname "$0")/revisions.sh"  # the repository root, a scratch $work removed on exit
base=$(git rev-parse --short "$1")
shift
python="$(pwd)/.venv/bin/python"
cp -r runtime "$work/runtime"
mkdir -p "$work/base"
git archive "$base" runtime | tar -x -C "$work/base"
for side in "$work/runtime" "$work/base/runtime"; do
  rm -rf "$side/build" "$side"/bitmaps_runtime/*.so
done
(cd "$work/runtime" && "$python" setup.py build_ext --inplace > "$work/build_new.log" 2>&1) ||
  { echo "the working tree's extension did not build:" >&2; tail -30 "$work/build_new.log" >&2; exit 1; }
# BASE's module exports PyInit__native_base, so it loads as _native_base beside _native
grep -q 'PyInit__native()' "$work/base/runtime/csrc/binding.cpp" ||
  { echo "$base's runtime/csrc/binding.cpp has no PyInit__native() to rename" >&2; exit 2; }
sed -i 's/PyInit__native()/PyInit__native_base()/' "$work/base/runtime/csrc/binding.cpp"
(cd "$work/base/runtime" && "$python" setup.py build_ext --inplace > "$work/build_base.log" 2>&1) ||
  { echo "$base's extension did not build:" >&2; tail -30 "$work/build_base.log" >&2; exit 1; }
so=$(ls "$work"/base/runtime/bitmaps_runtime/_native*.so)
cp "$so" "$work/_native_base${so##*/_native}"
models=()
for model in "$@"; do models+=("$(realpath "$model")"); done
repo=$(pwd -P)
out=$(realpath -m "${OUT:-benchmarks/results/runtime_ab.json}")  # before the cd below
(cd "$work" && PYTHONPATH="$work/runtime" "$python" "$repo/benchmarks/paired_forwards.py" --base-module "$work"/_native_base*.so \
  --base "$base" --what "encoder forwards on the working tree's runtime and on $base's, alternating in one process (benchmarks/runtime_ab.sh); ratio = base ms / new ms of each pair" \
  --rounds "${ROUNDS:-40}" --batch "${BATCH:-1}" --threads "${THREADS:-1}" --cold-mb "${COLD_MB:-0}" --out "$out" "${models[@]}")
