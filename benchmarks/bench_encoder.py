#!/usr/bin/env python
"""
End to end: a 12-layer BERT-base-sized encoder (hidden 768, 12 heads, FFN 3072; random weights:
speed does not depend on their values) at batch 1, sequence 128, as torch fp32, torch int8
dynamic quantization, and packed 1-bit models whose 72 encoder linears run on the Bitmaps kernels
(W1A32: binary weights, fp32 activations; W1A8: int8 activations by table lookup; W1A1: binary
weights and activations). Attention
matmuls, softmax, LayerNorm and GELU stay torch fp32 in every variant.

Each variant runs in its own process, so its peak memory (max RSS) is its own; the packed
variants load packed files written beforehand, as a user would. Ratios are
against fp32 measured in the same run, with the same thread count.

    python benchmarks/bench_encoder.py --out benchmarks/results
"""
import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import median_seconds  # noqa: E402

VARIANTS = ["fp32", "int8_dynamic", "packed_w1a32", "packed_w1a8", "packed_w1a1"]
BERT_BASE = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)


def build(variant: str):
    """The model and the bytes it takes on disk."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    bert = BertModel(BertConfig(**BERT_BASE), add_pooling_layer=False).eval()
    if variant == "fp32":
        return bert, sum(t.numel() * t.element_size() for t in bert.state_dict().values())
    if variant == "int8_dynamic":
        model = torch.ao.quantization.quantize_dynamic(bert, {torch.nn.Linear}, dtype=torch.qint8)
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        return model, buffer.tell()
    raise ValueError(f"{variant} is loaded from a packed file, not built")


def write_packed_files(directory: Path) -> None:
    """The packed variants are loaded from files, as a user would, so their peak memory is that
    of loading a packed model, not of building one from the fp32 model."""
    from bitmaps_allennlp.modules.bert_binarization import binarize_bert_encoder
    from bitmaps_allennlp.packed.export import pack_bert
    from bitmaps_allennlp.packed.file_format import write_packed_model

    bert, _ = build("fp32")
    binarize_bert_encoder(bert)
    for scheme in ("w1a32", "w1a8", "w1a1"):
        write_packed_model(pack_bert(bert, scheme=scheme)[0], directory / f"packed_{scheme}.safetensors")


def load_packed(path: Path):
    from bitmaps_allennlp.packed.file_format import read_packed_model
    from bitmaps_allennlp.packed.packed_bert import build_packed_bert

    model, _ = build_packed_bert(read_packed_model(path))
    return model, path.stat().st_size


def run_variant(variant: str, threads: int, repeats: int, packed_dir: Path) -> dict:
    torch.set_num_threads(threads)
    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if variant.startswith("packed"):
        model, file_bytes = load_packed(packed_dir / f"{variant}.safetensors")
    else:
        model, file_bytes = build(variant)
    ids = torch.randint(1000, 30000, (1, 128))
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        timing = median_seconds(lambda: model(input_ids=ids, attention_mask=mask), repeats=repeats, min_sample_seconds=0.0)
    from bitmaps_allennlp import kernels

    return {
        "variant": variant,
        "threads": threads,
        **timing,
        "model_bytes": file_bytes,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_model_mb": baseline_mb,
        "kernel_path": kernels.backend(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--packed-dir", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        write_packed_files(Path(args.packed_dir))
        return
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.threads[0], args.repeats, Path(args.packed_dir))))
        return
    staging = tempfile.TemporaryDirectory()
    subprocess.run([sys.executable, __file__, "--prepare", "--packed-dir", staging.name], check=True)
    results = []
    for threads in args.threads:
        for variant in VARIANTS:
            command = [sys.executable, __file__, "--variant", variant, "--threads", str(threads), "--repeats", str(args.repeats), "--packed-dir", staging.name]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            row = json.loads(output.strip().splitlines()[-1])
            results.append(row)
            print(f"threads={threads} {variant}: {row['median_s'] * 1e3:.1f} ms, {row['model_bytes'] / 2**20:.1f} MiB, peak RSS {row['peak_rss_mb']:.0f} MB", flush=True)
    for row in results:
        fp32 = next(r for r in results if r["threads"] == row["threads"] and r["variant"] == "fp32")
        int8 = next(r for r in results if r["threads"] == row["threads"] and r["variant"] == "int8_dynamic")
        row["speedup_vs_fp32"] = fp32["median_s"] / row["median_s"]
        row["speedup_vs_int8"] = int8["median_s"] / row["median_s"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "encoder.json").write_text(json.dumps({"torch": torch.__version__, "results": results}, indent=2))
    lines = ["| threads | variant | median (ms) | vs fp32 | vs int8 dynamic | model bytes | peak RSS (MB) |", "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['threads']} | {r['variant']} | {r['median_s'] * 1e3:.1f} | {r['speedup_vs_fp32']:.2f}x | "
            f"{r['speedup_vs_int8']:.2f}x | {r['model_bytes'] / 2**20:.1f} MiB | {r['peak_rss_mb']:.0f} |"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
