#!/usr/bin/env bash
# One kernel path's table at two revisions, timed against each other inside one process: the
# working tree's runtime is built with a second copy of ISA's table from BASE (its kernels file and
# the headers beside it, as BASE had them) registered as "ISA_base", then each forward of the packed
# model runs on one table and the next on the other, in alternating order. The two builds of
# archive_revisions.sh run in separate processes, whose timings on a noisy VM host move by 20-50%
# between minutes; here both sides see the same host state, and each pair's ratio is the figure.
# What it compares: the table's own kernels. Fields the working tree's KernelTable adds at its end
# are null in BASE's table (the encoder's fallback), so a change that adds a table entry counts too;
# a change to the portable core (encoder.cpp, linear.cpp) runs on both sides and does not.
# Saves OUT (default benchmarks/results/kernel_table_ab.json): every pair's milliseconds, the
# medians and quartiles of the ratios base/new, the largest output difference, the CPU.
# Usage: [ISA=avx512_vnni] [ROUNDS=40] [BATCH=1] [THREADS=1] [OUT=...] \
#          bash benchmarks/kernel_table_ab.sh BASE MODEL [MODEL...]   (MODEL: packed file or archive)
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: bash benchmarks/kernel_table_ab.sh BASE MODEL [MODEL...]" >&2; exit 2; }
source "$(dirname "$0")/revisions.sh"  # the repository root, a scratch $work removed on exit
base=$(git rev-parse --short "$1")
shift
isa=${ISA:-avx512_vnni}
python="$(pwd)/.venv/bin/python"
cp -r runtime "$work/runtime"
rm -rf "$work/runtime/build" "$work/runtime"/bitmaps_runtime/*.so
mkdir -p "$work/runtime/base_csrc"
git archive "$base" runtime/csrc | tar -x -C "$work/runtime/base_csrc" --strip-components=2
[ -f "$work/runtime/base_csrc/kernels_$isa.cpp" ] || { echo "$base has no runtime/csrc/kernels_$isa.cpp" >&2; exit 2; }
"$python" - "$work/runtime" "$isa" <<'PY'
import re, sys
root, isa = sys.argv[1], sys.argv[2]
# the base table as a value, by the name its (renamed) definition has in BASE's file
base_table = {"avx512_vnni": "base_avx512_vnni_kernels(*static_cast<const KernelTable*>(avx2))",
              "avx2": "base_kAvx2Kernels", "avx512": "base_kAvx512Kernels"}[isa]
# BASE's file in its own translation unit, its table's symbols renamed; its fields copied into zeroed
# storage larger than the working tree's table (fields added since then read null)
with open(f"{root}/csrc/kernels_ab_base.cpp", "w") as out:
    out.write(f"""#define avx512_vnni_kernels base_avx512_vnni_kernels
#define kAvx2Kernels base_kAvx2Kernels
#define kAvx512Kernels base_kAvx512Kernels
#include "../base_csrc/kernels_{isa}.cpp"
#include <cstring>
namespace bitmaps {{
const void* ab_base_table(const void* avx2, const char* name) {{
  alignas(64) static unsigned char storage[4096] = {{}};
  static const bool made = [&] {{
    KernelTable table = {base_table};
    table.isa = name;
    static_assert(sizeof table <= sizeof storage, "the base table fits");
    std::memcpy(storage, &table, sizeof table);
    return true;
  }}();
  (void)made;
  (void)avx2;
  return storage;
}}
}}  // namespace bitmaps
""")
dispatch = f"{root}/csrc/dispatch.cpp"
text = open(dispatch).read()
text = text.replace("namespace bitmaps {\nnamespace {", "namespace bitmaps {\nconst void* ab_base_table(const void* avx2, const char* name);\nnamespace {", 1)
anchor = "  return tables;\n}"
assert anchor in text
text = text.replace(anchor, f"""  for (const KernelTable* table : std::vector<const KernelTable*>(tables))
    if (std::string(table->isa) == "{isa}")
      tables.push_back(static_cast<const KernelTable*>(ab_base_table(&kAvx2Kernels, "{isa}_base")));
  return tables;
}}""", 1)
open(dispatch, "w").write(text)
setup = f"{root}/setup.py"
text = open(setup).read()
source = f'f"{{CSRC}}/kernels_{isa}.cpp"'
# the ISA file's entry in ISA_SOURCES, on one line or several: its flags are the base file's too
m = re.search(r'\(\s*"(BITMAPS_HAVE_[A-Z0-9_]+)",\s*' + re.escape(source) + r',\s*((?:.|\n)*?)\),\n', text)
flags = m.group(2).strip().rstrip(",")
text = text.replace(m.group(0), m.group(0) + f'        ("BITMAPS_HAVE_AB_BASE", f"{{CSRC}}/kernels_ab_base.cpp", {flags}),\n', 1)
open(setup, "w").write(text)
PY
(cd "$work/runtime" && "$python" setup.py build_ext --inplace > "$work/build.log" 2>&1) ||
  { echo "the A/B extension did not build (see below)" >&2; tail -30 "$work/build.log" >&2; exit 1; }
models=()
for model in "$@"; do models+=("$(realpath "$model")"); done
repo=$(pwd -P)
out=$(realpath -m "${OUT:-benchmarks/results/kernel_table_ab.json}")  # before the cd below
(cd "$work" && PYTHONPATH="$work/runtime" "$python" "$repo/benchmarks/paired_forwards.py" --table "$isa" --base "$base" \
  --what "encoder forwards on the working tree's $isa table and on $base's, alternating in one process (benchmarks/kernel_table_ab.sh); ratio = base ms / new ms of each pair" \
  --rounds "${ROUNDS:-40}" --batch "${BATCH:-1}" --threads "${THREADS:-1}" --out "$out" "${models[@]}")
