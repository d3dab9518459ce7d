#!/usr/bin/env python
"""
Where the C++ runtime's encoder forward spends its time, per phase (`BITMAPS_PROFILE`): the
packed W1A1, W1A8, W1A32 and W1.58A8 encoders of bench_runtime.py (random weights), batch 1 x 128,
1 thread (and more with --threads 1 2: how each phase scales), mean of 5 calls after a warm-up.
Writes benchmarks/results/runtime_profile.json.

    python benchmarks/profile_runtime.py --shapes minilm bert-base [--threads 1 2]
    python benchmarks/profile_runtime.py --archive "BiT stage 2=runs/recipes_full/bit_stage2/packed.tar.gz" \
        --out benchmarks/results/recipe_profile.json   # trained packed archives instead
    python benchmarks/profile_runtime.py --recipe-knobs --shapes minilm \
        --out benchmarks/results/recipe_knobs_profile.json   # random weights, the W1A1 recipes' quantizers
        [--write DIR]   # and their files, which benchmarks/archive_revisions.sh times per revision

--recipe-knobs times what the W1A1 recipes' quantized attention costs without a trained archive:
random weights with BiT stage 2's and BiBERT's quantizers (the timings do not depend on the weights'
values; the quantizers' learned scales are initialised from one forward on random tokens).
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_runtime  # noqa: E402
from timing import cpu_name  # noqa: E402


# the W1A1 recipes' quantizers (training_configs/bit_stage2_w1a1.jsonnet, bibert_w1a1.jsonnet):
# (linear defaults, per-component overrides, attention options)
RECIPE_KNOBS = {
    "bit_stage2_w1a1": (
        dict(activations="elastic", center_weights=True),
        {"ffn_out": {"activations": "two_set"}},
        dict(attention_activations="elastic", attention_probs="two_set"),
    ),
    "bibert_w1a1": (dict(activations="sign", center_weights=True), None, dict(attention="bi_attention", attention_activations="sign")),
}


def recipe_model(shape: str, recipe: str):
    """A packed model of `shape` with random weights and `recipe`'s quantizers."""
    import torch
    from bitmaps_allennlp.modules.bert_binarization import binarize_bert_encoder
    from bitmaps_allennlp.modules.binarization_spec import BinarizationSpec
    from bitmaps_allennlp.modules.component_quantization import ComponentQuantization
    from bitmaps_allennlp.packed.export import pack_bert

    defaults, overrides, attention = RECIPE_KNOBS[recipe]
    model = bench_runtime._bert(shape)
    spec = BinarizationSpec.from_options(bench_runtime.LINEARS, ComponentQuantization(**defaults), overrides, **attention)
    binarize_bert_encoder(model, spec)
    ids = torch.randint(1000, 30000, (2, 128), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model(input_ids=ids, attention_mask=torch.ones_like(ids))  # data-initialised scales (BiT's alpha)
    return pack_bert(model)[0]


def recipe_encoder(shape: str, recipe: str):
    """A packed encoder of `shape` with random weights and `recipe`'s quantizers."""
    from bitmaps_runtime.encoder import PackedEncoder

    return PackedEncoder(recipe_model(shape, recipe))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", default=["minilm", "bert-base"], choices=list(bench_runtime.SHAPES))
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--archive", action="append", default=[],
                        help="NAME=PACKED.tar.gz or NAME=MODEL.safetensors (a packed model file): profile these instead")
    parser.add_argument("--recipe-knobs", action="store_true", help="profile random-weight encoders with the W1A1 recipes' quantizers instead")
    parser.add_argument("--out", default="benchmarks/results/runtime_profile.json")
    parser.add_argument("--write", type=Path, help="with --recipe-knobs: also write each model to DIR/SHAPE_RECIPE.safetensors "
                        "(for benchmarks/archive_revisions.sh)")
    args = parser.parse_args()
    from bitmaps_runtime.encoder import PackedEncoder
    from bitmaps_runtime.file_format import read_packed_model
    from bitmaps_runtime.native import backend

    ids = np.random.default_rng(0).integers(1000, 30000, (1, 128))
    mask = np.ones((1, 128), np.int32)
    rows = []

    def profile(encoder, **labels) -> None:
        for threads in args.threads:
            encoder.hidden_states(ids, mask, threads=threads)
            encoder.profile(True)
            start = time.perf_counter()
            for _ in range(5):
                encoder.hidden_states(ids, mask, threads=threads)
            total = (time.perf_counter() - start) / 5
            phases = {k: v / 5 * 1e3 for k, v in encoder.profile(False).items()}
            rows.append({**labels, "threads": threads, "forward_ms": total * 1e3, "phases_ms": phases})
            print(labels, f"{threads} thread(s) {total * 1e3:.1f} ms", {k: round(v, 1) for k, v in phases.items()}, flush=True)

    if args.archive:
        for entry in args.archive:
            name, _, path = entry.partition("=")
            if not path:
                parser.error(f"--archive expects NAME=PATH, got {entry!r}")
            profile(PackedEncoder(bench_runtime.packed_model(path)), archive=name, path=path)
        args.shapes = []
    if args.recipe_knobs:
        for shape in args.shapes:
            for recipe in RECIPE_KNOBS:
                packed = recipe_model(shape, recipe)
                if args.write:
                    from bitmaps_allennlp.packed.file_format import write_packed_model

                    args.write.mkdir(parents=True, exist_ok=True)
                    write_packed_model(packed, args.write / f"{shape}_{recipe}.safetensors")
                profile(PackedEncoder(packed), shape=shape, recipe=recipe)
        args.shapes = []
    for shape in args.shapes:
        with tempfile.TemporaryDirectory() as tmp:
            bench_runtime.prepare(shape, Path(tmp))
            for variant in bench_runtime.PACKED:
                profile(PackedEncoder(read_packed_model(Path(tmp) / f"{variant}.safetensors")), shape=shape, variant=variant)
    Path(args.out).write_text(json.dumps({"cpu": cpu_name(), "kernel_path": backend(), "batch": 1, "seq": 128, "threads": args.threads, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
