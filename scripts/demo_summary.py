#!/usr/bin/env python
"""
The last step of `make demo`: what the packed model is for, on one screen.

Reads the demo's trained archive (`RUN/model.tar.gz`), its packed export (`RUN/packed.tar.gz`) and
the `allennlp evaluate` metrics of both (`RUN/metrics_trained.json`, `RUN/metrics_packed.json`);
fills one mask with the torch-free runtime; times the packed encoder against torch fp32, ONNX
Runtime int8 (the fastest of `quantize_dynamic` per tensor and per channel, each with and without
ONNX Runtime's BERT fusions: `bench_runtime.ORT_INT8`) and CTranslate2 int8 encoders of the same shape
(speed does not depend on weight values), batch 1 x 128 wordpieces, 1 thread, one call of each per round, interleaved,
medians. Prints the summary and writes it to `RUN/summary.json`.

    python scripts/demo_summary.py runs/demo
"""
import argparse
import json
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see benchmarks/bench_runtime.py
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

SEQ = 128


def _schemes_in_words(packed) -> str:
    """The packed linears' schemes in words, from their training knobs (SCHEME_SPECS): the demo's
    configuration decides them, so the summary reads them from the file."""
    from bitmaps_runtime.formats import SCHEME_SPECS

    weights = {"binary": "1-bit weights", "ternary": "ternary weights"}
    activations = {"real": "real activations", "int8": "8-bit activations"}  # the rest are 1-bit
    words = []
    for name in sorted({linear["scheme"] for linear in packed.linears.values()}):
        spec = SCHEME_SPECS.get(name)
        words.append(f"{weights.get(spec.weights, spec.weights)} and {activations.get(spec.activations, '1-bit activations')}"
                     f" ({name})" if spec else name)
    return "; ".join(words)


def _metrics(path: Path) -> dict:
    if not path.is_file():
        sys.exit(f"{path}: missing; run `allennlp evaluate ... --output-file {path}` first (see `make demo`)")
    return json.loads(path.read_text())


def _latencies(archive, rounds: int) -> dict:
    """Median milliseconds of one batch-1 encoder forward for each variant, and the peers' file sizes."""
    import numpy as np
    import torch
    from transformers import BertConfig, BertModel

    import bench_runtime
    from bitmaps_runtime.encoder import PackedEncoder
    from timing import one_cpu

    config = archive.packed.config
    shape = {key: config[key] for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")}
    torch.manual_seed(0)
    bert = BertModel(BertConfig(**shape), add_pooling_layer=False).eval()
    packed = PackedEncoder(archive.packed, source=archive.path)
    ids = np.random.default_rng(0).integers(1000, shape["vocab_size"], size=(1, SEQ), dtype=np.int64)
    runners = {"packed (bitmaps_runtime)": lambda i, m: packed.hidden_states(i, m, threads=1)}
    inputs = {"packed (bitmaps_runtime)": (ids, np.ones((1, SEQ), np.int32))}

    def torch_fp32(i, m):
        torch.set_num_threads(1)
        with torch.inference_mode():
            return bert(input_ids=torch.from_numpy(i), attention_mask=torch.from_numpy(m)).last_hidden_state

    runners["torch fp32"] = torch_fp32
    inputs["torch fp32"] = (ids, np.ones((1, SEQ), np.int64))
    with tempfile.TemporaryDirectory() as folder:
        sizes = bench_runtime.write_peer_files(bert, Path(folder), peers=["torch_fp32"])
        # every ONNX Runtime int8 build the benchmarks time (bench_runtime.ORT_INT8): the fastest is the peer
        for peers, name in ((bench_runtime.ORT_INT8, "ONNX Runtime int8"), (["ct2_int8"], "CTranslate2 int8")):
            try:
                sizes.update(bench_runtime.write_peer_files(bert, Path(folder), peers=peers))
                for peer in peers:
                    runners[peer] = bench_runtime.load(peer, "", Path(folder), 1)
                    inputs[peer] = (ids, np.ones((1, SEQ), np.int64))
            except ImportError as error:  # the `bench` extra is not installed
                print(f"{name} not measured: {error}")
        with one_cpu():  # CTranslate2's worker thread on the calling thread's vCPU (timing.one_cpu)
            samples = bench_runtime.interleaved_ms(runners, inputs, rounds)
    rows, builds, fastest = summary_rows(samples)
    return {
        "median_ms": {name: statistics.median(values) for name, values in rows.items()},
        "spread_ms": {name: [min(values), max(values)] for name, values in rows.items()},
        "ort_int8_builds_ms": builds,
        "ort_int8_fastest": fastest,
        "peer_file_bytes": sizes,
    }


ROWS = ["packed (bitmaps_runtime)", "torch fp32", "ONNX Runtime int8", "CTranslate2 int8"]


def summary_rows(samples: Dict[str, List[float]]) -> Tuple[Dict[str, List[float]], Dict[str, float], Optional[str]]:
    """The summary's rows (`ROWS` order) from the timed variants' samples: ONNX Runtime int8 is the
    fastest of its builds (`bench_runtime.fastest_ort_int8`), CTranslate2 int8 is `ct2_int8`. Also
    each ONNX Runtime build's median, and which was fastest (None when none ran)."""
    import bench_runtime

    builds = {peer: statistics.median(samples[peer]) for peer in bench_runtime.ORT_INT8 if peer in samples}
    fastest = bench_runtime.fastest_ort_int8(builds) if builds else None
    named = {**{name: name for name in ROWS}, "ct2_int8": "CTranslate2 int8", **({fastest: "ONNX Runtime int8"} if fastest else {})}
    rows = {named[variant]: values for variant, values in samples.items() if variant in named}
    return {name: rows[name] for name in ROWS if name in rows}, builds, fastest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="the demo's serialization directory (runs/demo)")
    parser.add_argument("--sentence", default="the capital of france is [MASK] .")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()

    from bitmaps_runtime.archive import load_packed_archive
    from bitmaps_runtime.native import backend
    from bitmaps_runtime.predict import Predictor
    from timing import cpu_name

    trained, packed_path = args.run / "model.tar.gz", args.run / "packed.tar.gz"
    for path in (trained, packed_path):
        if not path.is_file():
            sys.exit(f"{path}: missing; `make demo` trains and exports it")
    metrics = {"trained": _metrics(args.run / "metrics_trained.json"), "packed": _metrics(args.run / "metrics_packed.json")}
    archive = load_packed_archive(packed_path)
    filled = Predictor(archive, threads=1).fill_masks([args.sentence])[0]["predictions"][0]
    timing = _latencies(archive, args.rounds)
    ms = timing["median_ms"]
    packed_ms = ms["packed (bitmaps_runtime)"]
    sizes = {"packed archive": packed_path.stat().st_size, "trained archive (fp32 latent weights)": trained.stat().st_size}
    for peer, name in ((timing["ort_int8_fastest"], "ONNX Runtime int8 encoder"), ("ct2_int8", "CTranslate2 int8 encoder")):
        if peer in timing["peer_file_bytes"]:
            sizes[name] = timing["peer_file_bytes"][peer]
    sizes["torch fp32 encoder"] = timing["peer_file_bytes"].get("torch_fp32")
    summary = {
        "machine": {"cpu": cpu_name(), "kernel_path": backend(), "threads": 1},
        "schemes": _schemes_in_words(archive.packed),
        "perplexity": {name: m.get("perplexity") for name, m in metrics.items()},
        "fill_mask": {"sentence": args.sentence, **filled},
        "encoder_ms_batch1_seq128": ms,
        "encoder_ms_spread": timing["spread_ms"],
        "ort_int8_builds_ms": timing["ort_int8_builds_ms"],
        "rounds": args.rounds,
        "file_bytes": sizes,
    }
    (args.run / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

    print(f"\n=== Bitmaps demo: all-MiniLM-L6-v2 with {_schemes_in_words(archive.packed)}, trained briefly, packed ===")
    print(f"masked-LM perplexity, WikiText-2 valid (first 160 blocks): trained {metrics['trained']['perplexity']:.1f}, "
          f"packed {metrics['packed']['perplexity']:.1f} (the packed file: 1-bit linears, int8 embedding tables)")
    best = ", ".join(f"{t} {p:.2f}" for t, p in zip(filled["tokens"][:3], filled["probabilities"][:3]))
    print(f"fill-mask (packed, torch-free runtime): {args.sentence!r} -> {best}")
    print(f"encoder latency, batch 1 x {SEQ}, 1 thread, {cpu_name()}, kernel path {backend()}, medians of {args.rounds}:")
    for name, value in ms.items():
        ratio = "" if name.startswith("packed") else f"  (packed runs {value / packed_ms:.2f}x as fast)"
        print(f"  {name:<26} {value:7.1f} ms{ratio}")
    if timing["ort_int8_builds_ms"]:
        builds = ", ".join(f"{peer.removeprefix('ort_int8_').replace('_', ' ')} {value:.1f}"
                           for peer, value in timing["ort_int8_builds_ms"].items())
        print(f"  (ONNX Runtime int8: the fastest of its builds: {builds} ms)")
    print("file sizes:")
    for name, value in sizes.items():
        if value:
            print(f"  {name:<38} {value / 2**20:6.1f} MiB")
    print(f"written to {args.run / 'summary.json'}; the short training leaves perplexity high: README's "
          "recipe table has the distilled students")


if __name__ == "__main__":
    main()
