#!/usr/bin/env python
"""
Linear layers at BERT-base shapes: torch fp32, torch int8 dynamic quantization (fbgemm/x86), and
the packed 1-bit kernels: W1A32 (binary weights, fp32 activations), W1A8 (binary weights, int8
absmax activations by table lookup, quantization and table building included in the time) and
W1A1 (binary weights and activations, activation binarize-and-pack included in the time). All in one run on one machine;
ratios are against torch fp32 measured in the same run.

    python benchmarks/bench_linear.py --out benchmarks/results

Writes linear.json and linear.png under --out and prints a Markdown table.
"""
import argparse
import json
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import cpu_name, median_seconds  # noqa: E402

from bitmaps_allennlp import kernels  # noqa: E402
from bitmaps_allennlp.quantization.bit_packing import pack_signs  # noqa: E402
from bitmaps_allennlp.packed.packed_linear import PackedLinear  # noqa: E402

SHAPES = [(768, 768), (768, 3072), (3072, 768)]  # (K in, N out)
TOKENS = [1, 8, 128, 512]
METHODS = ["fp32", "int8_dynamic", "w1a32", "w1a8", "w1a1"]


def layer_functions(k: int, n: int):
    """The layers as a packed model runs them: `PackedLinear` modules (Python call
    included) against torch's own modules."""
    torch.manual_seed(0)
    linear = torch.nn.Linear(k, n).eval()
    int8 = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(linear), {torch.nn.Linear}, dtype=torch.qint8)
    packed = pack_signs(linear.weight.detach())
    scale = linear.weight.detach().abs().mean(1)
    bias = linear.bias.detach()
    layers = {
        name: PackedLinear(k, n, packed, scale, bias, scheme=name)
        for name in ("w1a32", "w1a8", "w1a1")
    }
    return {"fp32": linear, "int8_dynamic": int8, **layers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    with torch.inference_mode():
        for threads in args.threads:
            torch.set_num_threads(threads)
            for k, n in SHAPES:
                functions = layer_functions(k, n)
                for m in TOKENS:
                    x = torch.randn(m, k)
                    row = {"threads": threads, "k": k, "n": n, "m": m}
                    for method in METHODS:
                        row[method] = median_seconds(lambda: functions[method](x), repeats=args.repeats)
                    for method in METHODS[1:]:
                        row[f"{method}_speedup"] = row["fp32"]["median_s"] / row[method]["median_s"]
                    results.append(row)
                    print(
                        f"threads={threads} K={k} N={n} M={m}: fp32 {row['fp32']['median_s'] * 1e6:.1f} us; "
                        + ", ".join(f"{x} {row[x + '_speedup']:.2f}x" for x in METHODS[1:]),
                        flush=True,
                    )
    report = {
        "machine": {"processor": platform.processor() or platform.machine(), "cpu": cpu_name(), "kernel_path": kernels.backend()},
        "torch": torch.__version__,
        "results": results,
    }
    (out / "linear.json").write_text(json.dumps(report, indent=2))
    print(markdown_table(results))
    plot(results, out / "linear.png")


def markdown_table(results) -> str:
    lines = [
        "| threads | K x N | M | torch fp32 (us) | int8 dynamic | W1A32 | W1A8 | W1A1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in results:
        lines.append(
            f"| {row['threads']} | {row['k']}x{row['n']} | {row['m']} | {row['fp32']['median_s'] * 1e6:.1f} | "
            + " | ".join(f"{row[m + '_speedup']:.2f}x" for m in METHODS[1:])
            + " |"
        )
    return "\n".join(lines)


def plot(results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    thread_counts = sorted({r["threads"] for r in results})
    fig, axes = plt.subplots(1, len(thread_counts), figsize=(7 * len(thread_counts), 4.5), squeeze=False)
    for ax, threads in zip(axes[0], thread_counts):
        rows = [r for r in results if r["threads"] == threads]
        labels = [f"{r['k']}x{r['n']}\nM={r['m']}" for r in rows]
        width = 0.2
        for i, method in enumerate(METHODS[1:]):
            ax.bar([x + (i - 1.5) * width for x in range(len(rows))], [r[f"{method}_speedup"] for r in rows], width, label=method)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels(labels, fontsize=6)
        ax.set_ylabel("speed-up over torch fp32 (median)")
        ax.set_title(f"{threads} thread(s)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
