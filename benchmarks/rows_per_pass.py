#!/usr/bin/env python
"""
How many rows one pass of the C++ encoder should take (`encoder_forward`'s `kRowsPerPass`):
batches run through `PackedEncoder.hidden_states(..., rows_per_pass=R)` for each R given, in ONE
process, alternating (round-robin), medians of --rounds forwards after one warm-up each. "batch"
is one pass for the whole batch (every layer of every sequence at once, the encoder's behaviour
before passes). Checks that every R gives the same hidden states (bit for bit: the models here
have integer-input linears, except W1A32 below) and says so in the JSON.

    python benchmarks/rows_per_pass.py --archive "BiT stage 1 W1A8=runs/long_lr1e-3/bit_stage1/packed.tar.gz" \\
        --shapes bert-base --batches 8x128 32x16 --threads 1 2 --json benchmarks/results/rows_per_pass.json

--shapes adds random-weight encoders of those shapes (benchmarks/bench_runtime.py) with each of
--recipes: W1A8 (int8 activations), BiT stage 2's W1A1 quantizers, W1A32 (real activations; its
linears pick their kernel by the rows of a call, so where a pass's rows pick another kernel than
the whole batch's, the float rounding changes and the JSON says "same_bits": false).
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import cpu_name  # noqa: E402

from bitmaps_runtime.encoder import PackedEncoder  # noqa: E402
from bitmaps_runtime.native import backend  # noqa: E402

WHOLE = "batch"
RECIPES = {"w1a8": "W1A8", "bit_stage2_w1a1": "BiT stage 2 W1A1", "w1a32": "W1A32"}


def encoders(args):
    out = {}
    for spec in args.archive:
        name, _, path = spec.partition("=")
        from bitmaps_runtime.archive import load_packed_archive

        out[name] = PackedEncoder(load_packed_archive(path).packed, source=path)
    if args.shapes:
        import profile_runtime

        # W1A8 and W1A32 on random weights: int8 or real activations into every binarized linear
        profile_runtime.RECIPE_KNOBS.setdefault("w1a8", (dict(activations="int8"), None, {}))
        profile_runtime.RECIPE_KNOBS.setdefault("w1a32", (dict(), None, {}))
        for shape in args.shapes:
            for recipe in args.recipes:
                out[f"{shape} {RECIPES[recipe]} (random weights)"] = profile_runtime.recipe_encoder(shape, recipe)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", action="append", default=[], metavar="NAME=PATH", help="a packed archive")
    parser.add_argument("--shapes", nargs="*", default=[], choices=["minilm", "bert-base"])
    parser.add_argument("--recipes", nargs="+", default=["w1a8", "bit_stage2_w1a1"], choices=list(RECIPES))
    parser.add_argument("--batches", nargs="+", default=["8x128", "32x16"], metavar="BATCHxSEQ")
    parser.add_argument("--rows", nargs="+", type=int, default=[32, 64, 128, 256], help="rows per pass to compare")
    parser.add_argument("--threads", nargs="+", type=int, default=[1])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if not args.archive and not args.shapes:
        parser.error("give --archive NAME=PATH and/or --shapes")
    models = encoders(args)
    records = []
    for spec in args.batches:
        try:
            batch, seq = (int(v) for v in spec.lower().split("x"))
        except ValueError:
            parser.error(f"--batches: expected BATCHxSEQ such as 8x128, got {spec!r}")
        ids = np.random.default_rng(0).integers(1000, 20000, size=(batch, seq))
        variants = [WHOLE] + args.rows
        for threads in args.threads:
            for name, encoder in models.items():
                def run(rows):
                    return encoder.hidden_states(ids, threads=threads, rows_per_pass=batch * seq if rows == WHOLE else rows)

                reference = run(WHOLE)
                same = all(np.array_equal(run(rows), reference) for rows in args.rows)  # also the warm-up
                samples = {rows: [] for rows in variants}
                for _ in range(args.rounds):
                    for rows in variants:
                        start = time.perf_counter()
                        run(rows)
                        samples[rows].append(time.perf_counter() - start)
                medians = {str(rows): round(statistics.median(v) * 1e3, 2) for rows, v in samples.items()}
                spread = {str(rows): round(min(v) / max(v), 2) for rows, v in samples.items()}
                best = min(args.rows, key=lambda r: medians[str(r)])
                record = dict(model=name, batch=batch, seq=seq, threads=threads, ms=medians, min_over_max=spread,
                              same_bits=same, speedup_at_128=round(medians[WHOLE] / medians["128"], 3) if 128 in args.rows else None)
                records.append(record)
                print(f"{name}, {batch}x{seq}, {threads} thread(s): "
                      + "  ".join(f"{k}: {v} ms" for k, v in medians.items())
                      + f"  (fastest {best}; same bits: {same})", flush=True)
    if args.json:
        result = dict(
            what="encoder forward in passes of R rows against one pass for the whole batch; medians of interleaved rounds",
            cpu=cpu_name(), kernel_path=backend(), rounds=args.rounds, records=records,
        )
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print("wrote", args.json)


if __name__ == "__main__":
    main()
