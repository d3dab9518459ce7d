"""Where one packed W1A1 linear call through Python spends its time at M=1: the module
(`PackedLinear`), `kernels.run_layer` (array wrapping), the native binding alone (`layer_forward`:
packing and kernel), and torch fp32's `nn.Linear` for comparison. Interleaved rounds, medians;
writes JSON.

    python benchmarks/call_overhead.py --out benchmarks/results/call_overhead.json
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import cpu_name  # noqa: E402

from bitmaps_allennlp import kernels  # noqa: E402
from bitmaps_allennlp.packed.packed_linear import PackedLinear  # noqa: E402
from bitmaps_allennlp.quantization.bit_packing import pack_signs  # noqa: E402


def per_call_us(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results/call_overhead.json")
    parser.add_argument("--shape", type=int, nargs=2, default=[768, 768], metavar=("K", "N"))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    k, n = args.shape
    generator = torch.Generator().manual_seed(0)
    w = torch.randn(n, k, generator=generator)
    layer = PackedLinear(k, n, pack_signs(w), w.abs().mean(1), torch.zeros(n), scheme="w1a1").eval()
    dense = torch.nn.Linear(k, n).eval()
    x = torch.randn(1, k, generator=generator)
    native = kernels.native_module()
    variants = {"module": lambda: layer(x), "torch_fp32": lambda: dense(x)}
    if native is not None:
        handle = layer._native_layer()
        out = np.empty((1, n), dtype=np.float32)
        variants["run_layer"] = lambda: kernels.run_layer(handle, x, k, n)
        variants["binding"] = lambda: native.layer_forward(handle, x.numpy(), out, 1)
    samples = {name: [] for name in variants}
    with torch.inference_mode():
        for fn in variants.values():
            per_call_us(fn, 200)  # warm-up
        for round_index in range(args.rounds):
            names = list(variants)
            names = names[round_index % len(names):] + names[: round_index % len(names)]
            for name in names:
                samples[name].append(per_call_us(variants[name], args.calls))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    result = {
        "what": __doc__.strip().splitlines()[0],
        "cpu": cpu_name(), "kernel_path": kernels.backend(), "threads": 1, "k": k, "n": n, "m": 1,
        "median_us": medians, "min_us": {name: min(v) for name, v in samples.items()},
        "max_us": {name: max(v) for name, v in samples.items()}, "rounds": args.rounds, "calls_per_round": args.calls,
    }
    Path(args.out).write_text(json.dumps(result, indent=2))
    for name, value in medians.items():
        print(f"{name:12s} {value:8.2f} us (min {result['min_us'][name]:.2f}, max {result['max_us'][name]:.2f})")
    print(f"CPU {result['cpu']}, kernel path {result['kernel_path']}")


if __name__ == "__main__":
    main()
