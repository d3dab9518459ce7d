#!/usr/bin/env python
"""
The full-precision and int8 baselines a reader compares binarized students with: the teacher
archive evaluated as it is (fp32), with fp16 weights, with torch's dynamic int8 quantization, and
with its encoder in ONNX Runtime int8 (`quantize_dynamic`, per channel). Every variant is scored
like `allennlp evaluate`: the archive's validation reader (deterministic masks, whole files) on
the same files, so the perplexities compare with every other table in README.

- `fp32`: the archive as trained.
- `fp16`: every floating tensor rounded to fp16 and computed in fp32, which is what an fp16 file
  costs in accuracy on a CPU (CPU runtimes widen fp16 to fp32; torch's CPU fp16 matmul is 5x
  slower than fp32 on Zen 3).
- `torch int8`: `torch.ao.quantization.quantize_dynamic` of every `nn.Linear` (the encoder's 36
  and the head's transform; the tied decoder stays fp32).
- `ONNX Runtime int8`: the encoder exported to ONNX and quantized per channel; the MLM head runs in
  torch fp32 on its output (the decoder is tied to the embeddings, which the int8 file does not
  quantize either).

Each evaluation is cached in OUT/VARIANT__SPLIT.json (an interrupted run resumes); the records go
to `--json` with the fields README's results use.

    python scripts/baselines.py runs/recipes_full/teacher/model.tar.gz --json results/baselines.json
"""
import argparse
import copy
import json
import platform
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "benchmarks"))

from atomic_json import write_json  # noqa: E402
from bench_runtime import export_encoder_onnx, ort_session  # noqa: E402
from perplexity_table import SPLITS  # noqa: E402

VARIANTS = {"fp32": "fp32", "fp16": "fp16", "torch int8": "int8", "ONNX Runtime int8": "int8"}


def fp16(model):
    import torch

    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
    return model


def torch_int8(model):
    import torch

    return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def export_onnx_int8(bert, folder: Path) -> Path:
    """`bert` as ONNX (`folder/encoder.onnx`), then quantized by ONNX Runtime (`quantize_dynamic`,
    int8 weights per channel); returns the int8 file's path."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32, int8 = folder / "encoder.onnx", folder / "encoder_int8.onnx"
    export_encoder_onnx(bert, fp32)
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
    return int8


def _ort_int8(model, folder: Path):
    """Replaces the model's `encode` with an ONNX Runtime int8 session of its encoder."""
    import numpy as np
    import torch

    session = ort_session(export_onnx_int8(model._encoder.bert, folder), torch.get_num_threads())

    def encode(tokens):
        inputs = tokens["tokens"]
        feed = {"input_ids": inputs["token_ids"].numpy().astype(np.int64), "attention_mask": inputs["mask"].numpy().astype(np.int64)}
        return torch.from_numpy(session.run(None, feed)[0])

    model.encode = encode
    return model


def _evaluate(model, archive, data: Path) -> Dict:
    from allennlp.common import Params
    from allennlp.data import DatasetReader
    from allennlp.data.data_loaders import DataLoader
    from allennlp.training.util import evaluate

    config = archive.config.duplicate()
    reader_params = config.get("validation_dataset_reader", config.get("dataset_reader")).as_dict(quiet=True)
    reader_params["max_instances"] = None  # whole files: training may cap validation
    reader = DatasetReader.from_params(Params(reader_params))
    loader_params = config.get("validation_data_loader", config.get("data_loader")).as_dict(quiet=True)
    loader_params.pop("batches_per_epoch", None)
    loader = DataLoader.from_params(params=Params(loader_params), reader=reader, data_path=str(data))
    loader.index_with(model.vocab)
    return evaluate(model, loader, cuda_device=-1)


def training_record(archive_path: Path) -> Dict:
    """Where and how long the archive trained, from its serialization directory when present."""
    run = archive_path.parent
    record: Dict = {"archive": str(archive_path)}
    config_file, metrics_file = run / "config.json", run / "metrics.json"
    if config_file.is_file():
        config = json.loads(config_file.read_text())
        loader, trainer = config.get("data_loader", {}), config.get("trainer", {})
        if loader.get("batches_per_epoch") and trainer.get("num_epochs"):
            record["steps"] = loader["batches_per_epoch"] * trainer["num_epochs"]
        record["blocks_per_step"] = loader.get("batch_size")
        if trainer.get("optimizer", {}).get("lr") is not None:
            record["learning_rate"] = trainer["optimizer"]["lr"]  # peak: runs differ in it (long_runs.sh LR)
        record["block_length"] = config.get("dataset_reader", {}).get("max_length")
    if metrics_file.is_file():
        record["wall_time"] = json.loads(metrics_file.read_text()).get("training_duration")
    record["machine"] = "this project's 2-core AMD EPYC VM (CPU only)"
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("teacher", type=Path, help="the teacher's model.tar.gz")
    parser.add_argument("--label", default="teacher", help="the records' model label (contains 'teacher')")
    parser.add_argument("--variant", action="append", choices=list(VARIANTS), help="only these (default: all)")
    parser.add_argument("--split", action="append", choices=sorted(SPLITS), help="default: WikiText-2 test, PTB test")
    parser.add_argument("--data-dir", type=Path, default=REPO / ".." / "shared" / "data")
    parser.add_argument("--cache", type=Path, help="folder for per-evaluation JSON (default: next to the archive)")
    parser.add_argument("--json", type=Path, default=REPO / "results" / "baselines.json")
    args = parser.parse_args()
    if not args.teacher.is_file():
        sys.exit(f"{args.teacher}: no such archive")
    import bitmaps_allennlp  # noqa: F401  registers the classes
    import torch
    from allennlp.models.archival import load_archive

    splits = args.split or ["WikiText-2 test", "PTB test"]
    variants = args.variant or list(VARIANTS)
    cache = args.cache or args.teacher.parent / "baselines"
    cache.mkdir(parents=True, exist_ok=True)
    trained = training_record(args.teacher)
    records = []
    for variant in variants:
        for split in splits:
            slug = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{variant}__{split}")
            cached = cache / f"{slug}.json"
            if cached.is_file():
                metrics = json.loads(cached.read_text())
            else:
                print(f"[{args.label}, {variant}] {split}", flush=True)
                archive = load_archive(str(args.teacher))
                model = archive.model.eval()
                with tempfile.TemporaryDirectory() as folder:
                    transform: Dict[str, Callable] = {
                        "fp32": lambda m: m, "fp16": fp16, "torch int8": torch_int8,
                        "ONNX Runtime int8": lambda m: _ort_int8(m, Path(folder)),
                    }
                    model = transform[variant](model)
                    started = time.perf_counter()
                    with torch.inference_mode():
                        metrics = _evaluate(model, archive, args.data_dir / SPLITS[split])
                    metrics["eval_seconds"] = round(time.perf_counter() - started, 1)
                write_json(cached, metrics)
            records.append(
                {
                    "model": f"{args.label} ({variant})", "variant": variant, "bits": VARIANTS[variant], "data": split.lower(),
                    "perplexity": metrics["perplexity"], "accuracy": metrics.get("accuracy"), "trained": copy.deepcopy(trained),
                    "evaluated_on": platform.machine(),
                }
            )
            print(f"  {records[-1]['model']:<32} {split:<16} perplexity {metrics['perplexity']:.2f}", flush=True)
    write_json(args.json, {"what": __doc__.strip().splitlines()[0], "records": records})
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
