# Sourced by the benchmarks that build runtime/csrc from several revisions (attention_kernels.sh,
# kernel_table_ab.sh, runtime_ab.sh,
# encoder_revisions.sh): a scratch folder removed on exit, setup.py's flags, and
# `prepare_revision REV`, which puts REV's runtime/csrc and runtime/tests (WORKTREE: the working
# tree's) in $work/REV and compiles its AVX2 kernels there as setup.py does ($dir, $csrc,
# $dir/avx2.o); `revision_objects REV` (after it) builds REV's whole core with every instruction set
# this CPU has, by REV's own runtime/tests/build_native_tests.sh (its flags), into $objects.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags=(-O3 -std=c++17 -ffp-contract=off)
prepare_revision() {
  dir="$work/$1"
  csrc="$dir/runtime/csrc"
  mkdir -p "$dir/runtime"
  if [ "$1" = WORKTREE ]; then cp -r runtime/csrc runtime/tests "$dir/runtime/"; else git archive "$1" runtime/csrc runtime/tests | tar -x -C "$dir"; fi
  g++ "${flags[@]}" -mavx2 -mfma -mpopcnt -I"$csrc" -c "$csrc/kernels_avx2.cpp" -o "$dir/avx2.o"
}
revision_objects() {
  bash "$dir/runtime/tests/build_native_tests.sh" "$dir/tk" > /dev/null
  objects=("$dir"/native_test_objects_tk/*.o)
}
# the short commit of REV, or WORKTREE
revision_name() { if [ "$1" = WORKTREE ]; then echo WORKTREE; else git rev-parse --short "$1"; fi; }
