#!/usr/bin/env python
"""
Sentence embeddings of a text file through the torch-free runtime (`bitmaps_runtime.predict`'s
Predictor, as `bitmaps-predict --input FILE --embeddings` runs it), three ways in ONE process,
alternating, medians of --rounds passes over the file: batches as the file reads with their padding
computed (as before `skip_padding`); batched by length (sentence-transformers' order, within
windows of 8 batches) with the padding computed; and the CLI's way, batches as read with the
padding left out of the encoder (`hidden_states(..., skip_padding=True)`). The sentences:
WikiText-2 raw validation's lines cut at " . ", the first --count of them that fit the archive's
max_length.

    python benchmarks/predict_file.py runs/long_lr1e-3/bit_stage2/packed.tar.gz --json benchmarks/results/predict_file.json
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

from bitmaps_runtime.archive import load_packed_archive  # noqa: E402
from bitmaps_runtime.native import backend  # noqa: E402
from bitmaps_runtime.predict import Predictor  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikitext-2-raw" / "valid.txt"


def sentences(path: Path, predictor: Predictor, count: int):
    tokenizer, limit, out = predictor.archive.tokenizer, predictor.archive.max_length, []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("="):
            continue
        for piece in line.split(" . "):
            piece = piece.strip()
            if piece and len(tokenizer.encode(piece).ids) <= limit:
                out.append(piece + " .")
                if len(out) == count:
                    return out
    return out


WINDOW = 8  # batches sorted together when batching by length


def batches(items, batch_size: int, by_length: bool):
    """Lists of sentences: as read, or sorted by characters within windows of WINDOW batches."""
    for start in range(0, len(items), batch_size * (WINDOW if by_length else 1)):
        chunk = items[start : start + batch_size * (WINDOW if by_length else 1)]
        if by_length:
            chunk = sorted(chunk, key=len)
        for first in range(0, len(chunk), batch_size):
            yield chunk[first : first + batch_size]


def embed_all(predictor: Predictor, items, batch_size: int, by_length: bool, skip_padding: bool) -> int:
    """Embeds every sentence (mean-pooled, as Predictor.embeddings); returns the wordpiece positions
    the encoder computed."""
    computed = 0
    for batch in batches(items, batch_size, by_length):
        _, ids, mask = predictor._encode(batch)
        hidden = predictor.encoder.hidden_states(ids, mask, threads=predictor.threads, skip_padding=skip_padding)
        weights = mask[..., None].astype(np.float32)
        (hidden * weights).sum(axis=1) / weights.sum(axis=1)
        computed += int(mask.sum()) if skip_padding else ids.size
    return computed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archive")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--count", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    predictor = Predictor(load_packed_archive(args.archive), threads=args.threads)
    items = sentences(args.data, predictor, args.count)
    real = sum(len(predictor.archive.tokenizer.encode(s).ids) for s in items)
    variants = {
        "batches as read, padding computed": (False, False),
        "by length, padding computed": (True, False),
        "batches as read, padding left out (bitmaps-predict)": (False, True),
    }
    times = {name: [] for name in variants}
    positions = {}
    embed_all(predictor, items[: args.batch_size], args.batch_size, False, False)  # warm-up
    for round_ in range(args.rounds):
        names = list(variants) if round_ % 2 == 0 else list(reversed(variants))
        for name in names:
            start = time.perf_counter()
            positions[name] = embed_all(predictor, items, args.batch_size, *variants[name])
            times[name].append(time.perf_counter() - start)
    result = {
        "what": __doc__.strip().splitlines()[0],
        "cpu": cpu_name(),
        "kernel_path": backend(),
        "archive": args.archive,
        "data": str(args.data),
        "sentences": len(items),
        "wordpieces": real,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "rounds": args.rounds,
        "variants": {
            name: {
                "median_s": statistics.median(t),
                "spread_s": [min(t), max(t)],
                "sentences_per_s": len(items) / statistics.median(t),
                "positions_computed": positions[name],
            }
            for name, t in times.items()
        },
    }
    base = result["variants"][next(iter(variants))]["median_s"]
    result["speedup_over_batches_as_read"] = {name: base / v["median_s"] for name, v in result["variants"].items()}
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{result['cpu']}, {result['kernel_path']}, {args.threads} thread(s), {len(items)} sentences ({real} wordpieces):")
    for name, v in result["variants"].items():
        print(f"  {name}: {v['median_s']:.2f} s, {v['sentences_per_s']:.0f} sentences/s, {v['positions_computed']} positions "
              f"computed, {result['speedup_over_batches_as_read'][name]:.2f}x")


if __name__ == "__main__":
    main()
