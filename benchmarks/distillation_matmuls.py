"""
The matrix products one distillation step cannot do without, timed alone on this CPU: the floor
under `profile_distillation_step.py`'s step (issue: training throughput).

A MiniLM-shaped step (16 blocks of 128 tokens, hidden 384, FFN 1536, 6 layers, 30522 words,
about 15% of positions masked) multiplies:
- the student's 6 x 6 linears forward, and backward twice (input and weight gradients); the
  forward products of BiT stage 1's int8 inputs and binary weights are integer dot products of
  the levels (`quantization.integer_product`, an int8 matrix product on CPU), the backward
  products float32,
- the teacher's 6 x 6 linears forward (no gradients),
- attention's two batched products per layer, forward in both models and backward (two products
  each) in the student's,
- the tied MLM decoder at the masked positions: the student's forward and both gradients, the
  teacher's forward, the forward in blocks of vocabulary columns as the head computes it (the
  single call is timed too, counted for nothing).
The head's 384 x 384 transform at the masked positions (under 1% of the FLOP) is left out.
Each product is timed with torch (MKL) as a step runs it (`linear` forward, `g @ W` and `g^T @ x`
backward), medians of interleaved rounds, at 1 and 2 threads; the sum is what a step spends in
products if everything else cost nothing, and the float32 products' sum (`float32_floor_ms`) is
what no change to the integer side can take away. Prints a table and writes JSON.

    python benchmarks/distillation_matmuls.py --out benchmarks/results/distillation_matmuls_icx.json
    python benchmarks/distillation_matmuls.py --isa avx2 --out ...   # as on an AVX2-only CPU
"""
import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # a site package is also called `benchmarks`
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from atomic_json import write_json  # noqa: E402
from timing import PEER_ISA_SWITCHES, cpu_name, limit_peer_isa  # noqa: E402

TOKENS, HIDDEN, FFN, LAYERS, VOCAB = 16 * 128, 384, 1536, 6, 30522
MASKED = round(TOKENS * 0.15)


def _products():
    """(name, calls per step, function, FLOP per call)."""
    import torch

    from bitmaps_allennlp.modules.masked_lm_head import blocked_logits
    from bitmaps_allennlp.quantization.integer_product import integer_dots

    torch.manual_seed(0)
    products = []
    # per layer: Q, K, V, attention output (384 x 384), FFN in (1536 x 384), FFN out (384 x 1536)
    for out_features, in_features, per_layer in ((HIDDEN, HIDDEN, 4), (FFN, HIDDEN, 1), (HIDDEN, FFN, 1)):
        x, w = torch.randn(TOKENS, in_features), torch.randn(out_features, in_features)
        b, g = torch.randn(out_features), torch.randn(TOKENS, out_features)
        flop = 2 * TOKENS * in_features * out_features
        shape = f"{out_features}x{in_features}"
        levels_x = torch.randint(-127, 128, (TOKENS, in_features)).float()
        levels_w = torch.randint(0, 2, (out_features, in_features)).float() * 2 - 1
        # forward: the teacher's in float32, the student's on integer levels; backward: the student's only
        products.append((f"linear {shape} forward", LAYERS * per_layer, lambda x=x, w=w, b=b: torch.nn.functional.linear(x, w, b), flop))
        products.append((f"linear {shape} forward, integer levels", LAYERS * per_layer, lambda x=levels_x, w=levels_w: integer_dots(x, w), flop))
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
    bias = torch.randn(VOCAB)
    flop = 2 * MASKED * HIDDEN * VOCAB
    # the head's forward in blocks (masked_lm_head.TiedDecoder); the single call it replaced is
    # timed beside it for reference and counts for nothing (0 calls a step)
    products.append(("decoder forward", 2, lambda: blocked_logits(hidden, table, bias), flop))
    products.append(("decoder forward, one call", 0, lambda: torch.nn.functional.linear(hidden, table, bias), flop))
    products.append(("decoder input gradient", 1, lambda: grad @ table, flop))
    products.append(("decoder weight gradient", 1, lambda: grad.t() @ hidden, flop))
    return products


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--out", required=True)
    parser.add_argument("--isa", choices=sorted(PEER_ISA_SWITCHES),
                        help="as on a CPU with only this instruction set (MKL and oneDNN, CPUID masked where possible)")
    args = parser.parse_args()
    limit = limit_peer_isa(args.isa) if args.isa else None  # before torch loads (may restart)
    import torch

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
    rows, floor, float32_floor = [], {t: 0.0 for t in threads}, {t: 0.0 for t in threads}
    for name, calls, _, flop in products:
        row = {"product": name, "calls_per_step": calls, "gflop_per_call": round(flop / 1e9, 3)}
        for t in threads:
            median = statistics.median(seconds[(name, t)])
            row[f"ms_{t}t"] = round(median * 1e3, 3)
            row[f"gflops_{t}t"] = round(flop / median / 1e9, 1)
            floor[t] += calls * median
            if "integer" not in name:
                float32_floor[t] += calls * median
        rows.append(row)
        print(f"{name:34s} x{calls:3d}  " + "  ".join(f"{t}t {row[f'ms_{t}t']:7.2f} ms {row[f'gflops_{t}t']:6.1f} GFLOP/s" for t in threads))
    total_flop = sum(calls * flop for _, calls, _, flop in products)
    print(f"per step: {total_flop / 1e9:.1f} GFLOP; " + ", ".join(f"{t} thread(s) {floor[t] * 1e3:.0f} ms" for t in threads)
          + "; float32 products alone " + ", ".join(f"{float32_floor[t] * 1e3:.0f} ms" for t in threads))
    record = {
        "what": "matrix products of one MiniLM distillation step (16 x 128 tokens), timed alone",
        "gflop_per_step": round(total_flop / 1e9, 1),
        "floor_ms": {f"{t}t": round(floor[t] * 1e3, 1) for t in threads},
        "float32_floor_ms": {f"{t}t": round(float32_floor[t] * 1e3, 1) for t in threads},
        "rounds": args.rounds,
        "products": rows,
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                    "isa_limit": limit and {"isa": args.isa, "environment": limit["environment"], "cpuid_masked": limit["cpuid_masked"]}},
    }
    write_json(args.out, record)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
