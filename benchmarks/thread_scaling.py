#!/usr/bin/env python
"""
How the runtime scales from 1 to 2 threads, round by round: the packed W1A1 and W1A8 encoders of
bench_runtime.py (random weights), batch 1 x 128, 1 and 2 threads timed in turn in one process
(one warm-up call, then the median of --calls timed calls per variant and round). The per-round
ratios show whether a low median comes from every round or from some rounds only (a busy or shared
second core: on the project's VMs the second vCPU has bursts of tens of milliseconds in which a
2-thread call runs slower than a 1-thread one, so a round of one call per variant is at the mercy
of one burst).
Writes benchmarks/results/thread_scaling.json.

    python benchmarks/thread_scaling.py --shape minilm --rounds 15
    python benchmarks/thread_scaling.py --model "BiT stage 2=runs/x/packed.tar.gz" --model "NAME=MODEL.safetensors" \
        --out ...   # packed archives or model files (profile_runtime.py --write) instead
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from atomic_json import write_json  # noqa: E402

VARIANTS = ["bitmaps_w1a1", "bitmaps_w1a8"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", default="minilm", choices=list(bench_runtime.SHAPES))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=10, help="timed calls per variant and round; a round keeps their median")
    parser.add_argument("--model", action="append", default=[],
                        help="NAME=PACKED.tar.gz or NAME=MODEL.safetensors: time these instead of the random-weight variants")
    parser.add_argument("--out", default="benchmarks/results/thread_scaling.json")
    args = parser.parse_args()
    from bitmaps_runtime.encoder import PackedEncoder
    from bitmaps_runtime.native import backend

    ids = np.random.default_rng(0).integers(1000, 30000, (1, 128))
    mask = np.ones((1, 128), np.int32)
    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            variants = [entry.partition("=")[0] for entry in args.model]
            runs = {}
            for entry in args.model:
                name, _, path = entry.partition("=")
                if not path or not Path(path).is_file():
                    parser.error(f"--model expects NAME=PATH to a packed archive or model file, got {entry!r}")
                encoder = PackedEncoder(bench_runtime.packed_model(path))
                for t in (1, 2):
                    runs[(name, t)] = lambda i, m, encoder=encoder, t=t: encoder.hidden_states(i, m, threads=t)
        else:
            variants = VARIANTS
            bench_runtime.prepare(args.shape, Path(tmp))
            runs = {(v, t): bench_runtime.load(v, args.shape, Path(tmp), t) for v in VARIANTS for t in (1, 2)}
        times = {key: [] for key in runs}
        for _ in range(args.rounds):
            for key, run in runs.items():
                run(ids, mask)
                calls = []
                for _ in range(args.calls):
                    start = time.perf_counter()
                    run(ids, mask)
                    calls.append((time.perf_counter() - start) * 1e3)
                times[key].append(float(np.median(calls)))
    records = []
    for v in variants:
        one, two = np.array(times[(v, 1)]), np.array(times[(v, 2)])
        records.append({
            "variant": v, "ms_1_thread": one.tolist(), "ms_2_threads": two.tolist(),
            "median_ratio": float(np.median(one) / np.median(two)), "round_ratios": sorted((one / two).round(3).tolist()),
        })
        print(f"{v}: 1 thread {np.median(one):.1f} ms, 2 threads {np.median(two):.1f} ms, median ratio "
              f"{np.median(one) / np.median(two):.2f}; per round {sorted((one / two).round(2).tolist())}")
    write_json(Path(args.out), {"cpu": cpu_name(), "kernel_path": backend(), "shape": None if args.model else args.shape,
                                "models": dict(m.partition("=")[::2] for m in args.model) or None, "batch": 1,
                                "seq": 128, "rounds": args.rounds, "calls_per_round": args.calls,
                                "records": records})


if __name__ == "__main__":
    main()
