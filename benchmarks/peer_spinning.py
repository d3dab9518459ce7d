#!/usr/bin/env python
"""
What turning ONNX Runtime's spinning off costs it on several threads, and the packed encoder
against ONNX Runtime int8 with its default (spinning) pool.

bench_runtime.py turns every spinning thread pool off (ONNX Runtime's
`session.intra_op.allow_spinning = 0`): its rounds call each variant once in turn, and a pool
still spinning after its call would take the cores from the next variant. A user's loop calls one
model back to back, where ONNX Runtime's default pool spins between calls. This script times that
case: each variant in blocks of back-to-back calls (the block's median), the blocks alternating
between variants with the order rotating, and a pause after each block so that a spinning pool
has gone idle before the next variant starts. The variants: the packed XNOR W1A1 and W1A8
encoders (Bitmaps' pool spins at most 100 us after a job, `BITMAPS_SPIN_US`), and every ONNX
Runtime int8 build of bench_runtime.py (`ORT_INT8`) with spinning on (its default) and off.
Random weights of the MiniLM-L6 and BERT-base shapes, sequence 128. Writes JSON, prints a table.

    python benchmarks/peer_spinning.py --name peer_spinning_zen4     # a few minutes
"""
import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # torch only writes the files here
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from atomic_json import write_json  # noqa: E402
from bench_runtime import ORT_INT8, SHAPES, cpu_flags, fastest_ort_int8, load, ort_session, prepare  # noqa: E402
from timing import cpu_name  # noqa: E402

PACKED = ["bitmaps_w1a1", "bitmaps_w1a8"]


def blocks_ms(runners: Dict[str, Callable[[], object]], blocks: int, calls: int, pause: float) -> Dict[str, List[float]]:
    """Each runner's median milliseconds per block of `calls` back-to-back calls (after 3 warm-up
    calls), one block of each runner per round, the order rotating, `pause` seconds after each."""
    names = list(runners)
    samples: Dict[str, List[float]] = {name: [] for name in names}
    for r in range(blocks):
        for name in names[r % len(names):] + names[:r % len(names)]:
            for _ in range(3):
                runners[name]()
            times = []
            for _ in range(calls):
                start = time.perf_counter()
                runners[name]()
                times.append((time.perf_counter() - start) * 1e3)
            samples[name].append(statistics.median(times))
            time.sleep(pause)
    return samples


def main() -> None:
    import numpy as np

    from bitmaps_runtime.native import backend

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["minilm:1", "minilm:8", "bert-base:1"], metavar="SHAPE:BATCH")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--blocks", type=int, default=9)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--pause", type=float, default=0.2, help="seconds after each block (a spinning pool goes idle)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--name", default="peer_spinning")
    args = parser.parse_args()
    configs = []
    for spec in args.configs:
        shape, _, batch = spec.partition(":")
        if shape not in SHAPES or not batch.isdigit():
            parser.error(f"--configs {spec}: expected SHAPE:BATCH with SHAPE one of {sorted(SHAPES)}")
        configs.append((shape, int(batch)))
    records = []
    for shape in dict.fromkeys(shape for shape, _ in configs):
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            print(f"[{shape}] writing the models", flush=True)
            prepare(shape, directory)
            for batch in (b for s, b in configs if s == shape):
                ids = np.random.default_rng(0).integers(1000, 30000, size=(batch, 128), dtype=np.int64)
                ids64, mask64, mask32 = ids, np.ones_like(ids), np.ones(ids.shape, np.int32)
                runners = {}
                for name in PACKED:
                    run = load(name, shape, directory, args.threads)
                    runners[name] = lambda run=run: run(ids, mask32)
                for build in ORT_INT8:
                    for spinning in (True, False):
                        session = ort_session(directory / f"{build}.onnx", args.threads, spinning=spinning)
                        runners[f"{build} ({'spinning' if spinning else 'not spinning'})"] = (
                            lambda session=session: session.run(None, {"input_ids": ids64, "attention_mask": mask64}))
                samples = blocks_ms(runners, args.blocks, args.calls, args.pause)
                medians = {name: statistics.median(values) for name, values in samples.items()}
                spin = {build: medians[f"{build} (spinning)"] for build in ORT_INT8}
                still = {build: medians[f"{build} (not spinning)"] for build in ORT_INT8}
                best_spin, best_still = spin[fastest_ort_int8(spin)], still[fastest_ort_int8(still)]
                record = {
                    "shape": shape, "batch": batch, "seq": 128, "threads": args.threads,
                    "median_ms": medians, "spread_ms": {n: [min(v), max(v)] for n, v in samples.items()},
                    "ort_int8_spinning_gain": best_still / best_spin,
                    "vs_ort_int8_spinning": {name: best_spin / medians[name] for name in PACKED},
                    "vs_ort_int8_not_spinning": {name: best_still / medians[name] for name in PACKED},
                }
                records.append(record)
                print(f"[{shape}] batch {batch}, {args.threads} threads: ONNX Runtime int8 {best_spin:.1f} ms spinning, "
                      f"{best_still:.1f} not ({record['ort_int8_spinning_gain']:.2f}x); "
                      + ", ".join(f"{n} {medians[n]:.1f} ms ({record['vs_ort_int8_spinning'][n]:.2f}x spinning, "
                                  f"{record['vs_ort_int8_not_spinning'][n]:.2f}x not)" for n in PACKED), flush=True)
    write_json(args.out / f"{args.name}.json", {
        "what": __doc__.strip().splitlines()[0],
        "machine": {"cpu": cpu_name(), "flags": cpu_flags(), "kernel_path": backend()},
        "blocks": args.blocks, "calls": args.calls, "pause_s": args.pause, "records": records,
    })


if __name__ == "__main__":
    main()
