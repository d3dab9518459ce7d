#!/usr/bin/env bash
# Builds the C++ kernel tests (runtime/tests/test_kernels.cpp) with the flags setup.py uses: the
# portable core with base flags, each instruction-set file with its own. No Python, no torch.
# The target is the compiler's: CXX=aarch64-linux-gnu-g++ builds the aarch64 (NEON) test, linked
# statically so that qemu-aarch64 runs it (make test-arm).
# Usage: [CXX=...] bash runtime/tests/build_native_tests.sh OUTPUT [EXTRA_LINK_FLAGS...]
# Builds OUTPUT (the kernel tests), OUTPUT_golden (the encoder against runtime/tests/golden/) and
# OUTPUT_pool (the thread pool).
set -euo pipefail
out=$1
shift
here="$(cd "$(dirname "$0")/.." && pwd)"
cxx=${CXX:-g++}
target="$("$cxx" -dumpmachine)"
base=(-O3 -std=c++17 -ffp-contract=off -I"$here/csrc")  # as runtime/setup.py
objects="$(dirname "$out")/native_test_objects_$(basename "$out")"
mkdir -p "$objects"
defines=()
sources=()
kernel_test_objects=()
case "$target" in
  x86_64*) arch=x86_64 ;;
  aarch64*) arch=aarch64 ;;
  *) arch=other ;;
esac
if [ "$arch" = x86_64 ]; then
  avx512=(-mavx512f -mavx512bw -mfma -mpopcnt -Wno-maybe-uninitialized)
  "$cxx" "${base[@]}" -mavx2 -mfma -mpopcnt -c "$here/csrc/kernels_avx2.cpp" -o "$objects/avx2.o"
  "$cxx" "${base[@]}" "${avx512[@]}" -c "$here/csrc/kernels_avx512.cpp" -o "$objects/avx512.o"
  "$cxx" "${base[@]}" "${avx512[@]}" -mavx512vl -mavx512vpopcntdq -mavx512vnni -mavx512bitalg \
    -c "$here/csrc/kernels_avx512_vnni.cpp" -o "$objects/avx512_vnni.o"
  "$cxx" "${base[@]}" "${avx512[@]}" -mavx512vl -mavx512vnni -mavx512vbmi \
    -c "$here/csrc/kernels_avx512_vbmi.cpp" -o "$objects/avx512_vbmi.o"
  # float_avx512.h's loops against their definitions: a test file of its own, with the AVX-512 flags
  "$cxx" "${base[@]}" -O2 "${avx512[@]}" -c "$here/tests/test_float_avx512.cpp" -o "$objects/test_float_avx512.o"
  kernel_test_objects=("$objects/test_float_avx512.o")
  defines=(-DBITMAPS_HAVE_AVX2 -DBITMAPS_HAVE_AVX512 -DBITMAPS_HAVE_AVX512_VNNI -DBITMAPS_HAVE_AVX512_VBMI)
  sources=("$objects/avx2.o" "$objects/avx512.o" "$objects/avx512_vnni.o" "$objects/avx512_vbmi.o")
elif [ "$arch" = aarch64 ]; then
  "$cxx" "${base[@]}" -c "$here/csrc/kernels_neon.cpp" -o "$objects/neon.o"
  "$cxx" "${base[@]}" -march=armv8.2-a+dotprod -c "$here/csrc/kernels_neon_dotprod.cpp" -o "$objects/neon_dotprod.o"
  defines=(-DBITMAPS_HAVE_NEON -DBITMAPS_HAVE_NEON_DOTPROD)
  sources=("$objects/neon.o" "$objects/neon_dotprod.o")
fi
for name in dispatch thread_pool kernels_scalar int8_lut linear encoder model_builder; do
  sources+=("$here/csrc/$name.cpp")
done
# the core once, then each test program: OUTPUT (kernels) and OUTPUT_golden (the encoder end to end)
for source in "${sources[@]}"; do
  case "$source" in
    *.cpp) "$cxx" "${base[@]}" "${defines[@]}" -c "$source" -o "$objects/$(basename "$source" .cpp).o" ;;
  esac
done
objs=()
for source in "${sources[@]}"; do
  case "$source" in
    *.cpp) objs+=("$objects/$(basename "$source" .cpp).o") ;;
    *) objs+=("$source") ;;
  esac
done
# the test programs themselves at -O2: Debian's aarch64 GCC 12 has an internal compiler error
# vectorizing a reduction in test_encoder_golden.cpp's main at -O3 (the core above is not affected)
tests=("${base[@]}" -O2)
"$cxx" "${tests[@]}" "${defines[@]}" "$here/tests/test_kernels.cpp" "${kernel_test_objects[@]}" "${objs[@]}" -pthread "$@" -o "$out"
"$cxx" "${tests[@]}" "${defines[@]}" "$here/tests/test_encoder_golden.cpp" "${objs[@]}" -pthread "$@" -o "${out}_golden"
# OUTPUT_pool: the thread pool alone (test_thread_pool.cpp), with ThreadSanitizer where this
# compiler links it (not for the static aarch64 build)
tsan=()
if echo 'int main() { return 0; }' | "$cxx" -x c++ -fsanitize=thread "$@" -o "$objects/tsan_probe" - 2>/dev/null; then
  tsan=(-fsanitize=thread -g -O1)
fi
"$cxx" -std=c++17 -O2 "${tsan[@]}" -I"$here/csrc" "$here/tests/test_thread_pool.cpp" "$here/csrc/thread_pool.cpp" \
  -pthread "$@" -o "${out}_pool"
echo "built $out, ${out}_golden and ${out}_pool${tsan:+ (ThreadSanitizer)} for $target"
