"""
The matrix products one distillation step cannot do without, timed alone on this CPU: the floor
under `profile_distillation_step.py`'s step (issue: training throughput).

A MiniLM-shaped step (16 blocks of 128 tokens, hidden 384, FFN 1536, 6 layers, 30522 words,
about 15% of positions masked) multiplies:
- the student's 6 x 6 linears forward, and backward twice (input and weight gradients),
- the teacher's 6 x 6 linears forward (no gradients),
- attention's two batched products per layer, forward in both models and backward (two products
  each) in the student's,
- the tied MLM decoder at the masked positions: the student's forward and both gradients, the
  teacher's forward.
The head's 384 x 384 transform at the masked positions (under 1% of the FLOP) is left out.
Each product is timed with torch (MKL) as a step runs it (`linear` forward, `g @ W` and `g^T @ x`
backward), medians of interleaved rounds, at 1 and 2 threads; the sum is what a step spends in
products if everything else cost nothing. Prints a table and writes JSON.

    python benchmarks/distillation_matmuls.py --out benchmarks/results/distillation_matmuls_icx.json
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # a site package is also called `benchmarks`

from timing import cpu_name  # noqa: E402

TOKENS, HIDDEN, FFN, LAYERS, VOCAB = 16 * 128, 384, 1536, 6, 30522
MASKED = round(TOKENS * 0.15)


def _products():
    """(name, calls per step, function, FLOP per call)."""
    torch.manual_seed(0)
    products = []
    # per layer: Q, K, V, attention output (384 x 384), FFN in (1536 x 384), FFN out (384 x 1536)
    for out_features, in_features, per_layer in ((HIDDEN, HIDDEN, 4), (FFN, HIDDEN, 1), (HIDDEN, FFN, 1)):
        x, w = torch.randn(TOKENS, in_features), torch.randn(out_features, in_features)
        b, g = torch.randn(out_features), torch.randn(TOKENS, out_features)
        flop = 2 * TOKENS * in_features * out_features
        shape = f"{out_features}x{in_features}"
        # forward: the student's and the teacher's; backward: the student's only
        products.append((f"linear {shape} forward", 2 * LAYERS * per_layer, lambda x=x, w=w, b=b: torch.nn.functional.linear(x, w, b), flop))
        products.append((f"linear {shape} input gradient", LAYERS * per_layer, lambda g=g, w=w: g @ w, flop))
        products.append((f"linear {shape} weight gradient", LAYERS * per_layer, lambda g=g, x=x: g.t() @ x, flop))
    # attention, per layer: scores Q K^T and context P V over 16 x 12 heads of 128 x 32
    heads, length, size = 16 * 12, 128, HIDDEN // 12
    q, k = torch.randn(heads, length, size), torch.randn(heads, size, length)
    p, v = torch.randn(heads, length, length), torch.randn(heads, length, size)
    flop = 2 * heads * length * length * size
    # forward in both models, two products each in the student's backward
    products.append(("attention scores", 2 * LAYERS + 2 * LAYERS, lambda: torch.bmm(q, k), flop))
    products.append(("attention context", 2 * LAYERS + 2 * LAYERS, lambda: torch.bmm(p, v), flop))
    hidden, table, grad = torch.randn(MASKED, HIDDEN), torch.randn(VOCAB, HIDDEN), torch.randn(MASKED, VOCAB)
    flop = 2 * MASKED * HIDDEN * VOCAB
    products.append(("decoder forward", 2, lambda: hidden @ table.t(), flop))
    products.append(("decoder input gradient", 1, lambda: grad @ table, flop))
    products.append(("decoder weight gradient", 1, lambda: grad.t() @ hidden, flop))
    return products


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    products = _products()
    threads = [int(t) for t in args.threads.split(",")]
    seconds = {(name, t): [] for name, *_ in products for t in threads}
    for round_ in range(args.rounds + 2):  # two warm-up rounds
        for t in threads:
            torch.set_num_threads(t)
            for name, _, fn, _ in products:
                start = time.perf_counter()
                fn()
                if round_ >= 2:
                    seconds[(name, t)].append(time.perf_counter() - start)
    rows, floor = [], {t: 0.0 for t in threads}
    for name, calls, _, flop in products:
        row = {"product": name, "calls_per_step": calls, "gflop_per_call": round(flop / 1e9, 3)}
        for t in threads:
            median = statistics.median(seconds[(name, t)])
            row[f"ms_{t}t"] = round(median * 1e3, 3)
            row[f"gflops_{t}t"] = round(flop / median / 1e9, 1)
            floor[t] += calls * median
        rows.append(row)
        print(f"{name:34s} x{calls:3d}  " + "  ".join(f"{t}t {row[f'ms_{t}t']:7.2f} ms {row[f'gflops_{t}t']:6.1f} GFLOP/s" for t in threads))
    total_flop = sum(calls * flop for _, calls, _, flop in products)
    print(f"per step: {total_flop / 1e9:.1f} GFLOP; " + ", ".join(f"{t} thread(s) {floor[t] * 1e3:.0f} ms" for t in threads))
    record = {
        "what": "matrix products of one MiniLM distillation step (16 x 128 tokens), timed alone",
        "gflop_per_step": round(total_flop / 1e9, 1),
        "floor_ms": {f"{t}t": round(floor[t] * 1e3, 1) for t in threads},
        "rounds": args.rounds,
        "products": rows,
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__},
    }
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
