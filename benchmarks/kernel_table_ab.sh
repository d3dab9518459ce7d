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
cd "$(dirname "$0")/.."
base=$(git rev-parse --short "$1")
shift
isa=${ISA:-avx512_vnni}
python="$(pwd)/.venv/bin/python"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
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
cat > "$work/time.py" <<'PY'
import json, statistics, sys, time
import numpy as np
sys.path[:0] = [sys.argv[1] + "/benchmarks", sys.argv[1] + "/scripts"]
from atomic_json import write_json
from timing import cpu_name
from bitmaps_runtime import native
from bitmaps_runtime.encoder import PackedEncoder
from bench_runtime import packed_model
_, repo, isa, base, rounds, batch, threads, out, *models = sys.argv
rounds, batch, threads = int(rounds), int(batch), int(threads)
paths = [isa, f"{isa}_base"]
records = []
for model in models:
    encoder = PackedEncoder(packed_model(model), source=model)
    ids = np.random.default_rng(0).integers(1000, 30000, (batch, 128))
    mask = np.ones((batch, 128), np.int32)
    outputs = {}
    for path in paths:
        native.select(path)
        outputs[path] = encoder.hidden_states(ids, mask, threads=threads)
    times = {path: [] for path in paths}
    for r in range(rounds):
        for path in (paths if r % 2 == 0 else paths[::-1]):
            native.select(path)
            start = time.perf_counter()
            encoder.hidden_states(ids, mask, threads=threads)
            times[path].append((time.perf_counter() - start) * 1e3)
    ratios = [b / a for a, b in zip(times[isa], times[f"{isa}_base"])]
    record = {"model": model, "batch": batch, "seq": 128, "threads": threads,
              "ms": {"new": times[isa], "base": times[f"{isa}_base"]},
              "median_ms": {"new": statistics.median(times[isa]), "base": statistics.median(times[f"{isa}_base"])},
              "ratio_base_over_new": {"median": statistics.median(ratios),
                                      "quartiles": [float(q) for q in np.percentile(ratios, [25, 75])]},
              "max_abs_output_difference": float(np.abs(outputs[isa] - outputs[f"{isa}_base"]).max())}
    records.append(record)
    print(f"{model}: new {record['median_ms']['new']:.3f} ms, {base} {record['median_ms']['base']:.3f} ms; "
          f"base/new per pair: median {record['ratio_base_over_new']['median']:.3f}x "
          f"(quartiles {record['ratio_base_over_new']['quartiles'][0]:.3f}-{record['ratio_base_over_new']['quartiles'][1]:.3f}); "
          f"max |output difference| {record['max_abs_output_difference']:.3g}", flush=True)
write_json(out, {"what": f"encoder forwards on the working tree's {isa} table and on {base}'s, alternating in one process "
                         "(benchmarks/kernel_table_ab.sh); ratio = base ms / new ms of each pair",
                 "kernel_path": isa, "base": base, "rounds": rounds, "cpu": cpu_name(), "records": records})
PY
models=()
for model in "$@"; do models+=("$(realpath "$model")"); done
repo=$(pwd -P)
out=$(realpath -m "${OUT:-benchmarks/results/kernel_table_ab.json}")  # before the cd below
(cd "$work" && PYTHONPATH="$work/runtime" "$python" "$work/time.py" "$repo" "$isa" "$base" "${ROUNDS:-40}" \
  "${BATCH:-1}" "${THREADS:-1}" "$out" "${models[@]}")
