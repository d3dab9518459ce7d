#!/usr/bin/env python
"""
When does binarization win? For every model: each trained recipe (as trained, fake-quantized in
torch), its packed export (on the C++ runtime), the teacher's baselines (fp32, fp16 weights, torch
int8, ONNX Runtime int8; `scripts/baselines.py`) and the dense 2-layer student, this computes

- WikiText-2 and PTB test perplexity (`allennlp evaluate` with the archive's deterministic masks,
  whole files; cached per evaluation, shared with `scripts/perplexity_table.py`'s folder);
- the encoder's batch-1 x 128 latency on 1 thread through the fastest runtime the model has
  (packed files: `bitmaps_runtime`; float models: the faster of torch and ONNX Runtime fp32;
  int8: the runtime that quantized them), all in ONE process, one call of each per round, the
  order rotating, medians;
- the whole file a user would ship (archives as written; fp16 and int8 files written here);

marks the Pareto front (no other model is both at most as large/slow and at most as perplexed),
writes `results/pareto.json` and `results/pareto.png`, and prints a table.

    python scripts/pareto.py --runs runs/recipes_full runs/long \
        --baselines results/baselines.json results/baselines_dense.json \
        [--stand-ins bitnet_b158=runs/standin/bitnet_b158/packed.tar.gz]

A real-budget run whose archive did not survive (runs/ is not kept between sessions) can still be
placed: `--stand-ins RUN=PACKED` takes its perplexities from `results/long_runs.json` and its
latency and size from PACKED, the same config trained a few steps and exported.

A whole report can be re-timed the same way, on a new build or another CPU, when none of its
archives survived: `scripts/stand_ins.sh` trains each config 2 steps, then

    python scripts/pareto.py --retime results/pareto_zen4_avx512_vnni.json --stand-in-folders \
        runs/recipes_i8/teacher=runs/stand_ins/teacher runs/long_lr1e-3/dense_small=runs/stand_ins/dense_small \
        runs/long_lr1e-3/bit_stage1=runs/stand_ins/bit_stage1 ...

times every model through its stand-in and keeps the rest of the report (perplexities, file sizes,
provenance) as it was; each record names its stand-in (`latency_stand_in`).
"""
import argparse
import json
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see benchmarks/bench_runtime.py
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "benchmarks"))

from atomic_json import write_json  # noqa: E402
from baselines import export_onnx_int8, fp16, torch_int8, training_record  # noqa: E402
from bench_runtime import ort_session  # noqa: E402
from perplexity_table import SPLITS, evaluate  # noqa: E402

# run folder -> (label, bits): the recipes of scripts/packed_parity.sh (the *_int8_tables folders:
# records from before every recipe trained int8 tables, when two configs did so beside the others)
RECIPES = {
    "xnor_w1": ("XNOR W1 (BWN weights)", "W1A32"),
    "bit_stage1": ("BiT stage 1", "W1A8"),
    "bit_stage1_int8_tables": ("BiT stage 1, int8 tables trained", "W1A8"),
    "bitnet_b158": ("BitNet b1.58", "W1.58A8"),
    "bibert_w1a1": ("BiBERT", "W1A1"),
    "bit_stage2": ("BiT stage 2", "W1A1"),
    "bit_stage2_int8_tables": ("BiT stage 2, int8 tables trained", "W1A1"),
}
TEST_SPLITS = ["WikiText-2 test", "PTB test"]
WHOLE_FILES = '{"validation_dataset_reader.max_instances": null}'
SEQ = 128


def whole_file_perplexities(name: str, archive: Path, cache: Path, data_dir: Path) -> Dict[str, float]:
    """WikiText-2 and PTB test perplexity of an archive (whole files), cached as cache/NAME__SPLIT.json."""
    import re

    result = {}
    for split in TEST_SPLITS:
        slug = re.sub(r"[^A-Za-z0-9._()-]+", "_", f"{name}__{split}")
        result[split.lower()] = evaluate(str(archive), data_dir / SPLITS[split], WHOLE_FILES, cache / f"{slug}.json")["perplexity"]
    return result


def _torch_runner(module) -> Callable:
    import torch

    def run(ids, mask):
        torch.set_num_threads(1)
        with torch.inference_mode():
            return module(torch.from_numpy(ids), torch.from_numpy(mask).bool())

    return run


def _ort_runner(session) -> Callable:
    return lambda ids, mask: session.run(None, {"input_ids": ids, "attention_mask": mask})[0]


def _bert_runner(bert) -> Callable:
    import torch

    def run(ids, mask):
        torch.set_num_threads(1)
        with torch.inference_mode():
            return bert(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state

    return run


def _packed_runner(packed: Path) -> Callable:
    """The C++ runtime's encoder of a packed archive, on 1 thread."""
    from bitmaps_runtime.archive import load_packed_archive
    from bitmaps_runtime.encoder import PackedEncoder

    encoder = PackedEncoder(load_packed_archive(packed).packed, source=str(packed))
    return lambda ids, mask: encoder.hidden_states(ids, mask.astype("int32"), threads=1)


def _file_bytes(write: Callable[[Path], None], folder: Path, name: str) -> int:
    path = folder / name
    write(path)
    return path.stat().st_size


def _run_label(recipe: str, trained: Dict) -> str:
    """A trained run's label: its recipe, budget and, where recorded, peak learning rate (the
    real-budget runs differ in it: scripts/long_runs.sh LR)."""
    lr = trained.get("learning_rate")
    return f"{recipe}, {trained.get('steps')} steps" + (f", lr {lr:g}" if lr is not None else "")


BASELINE_VARIANTS = ("fp32", "fp16", "torch int8", "ONNX Runtime int8")


def _baseline_runners(variant: str, model, folder: Path) -> Tuple[Dict[str, Callable], object]:
    """The runners of a baseline variant (`scripts/baselines.py`) of a float masked LM, and what
    its file is written from: the torch int8 model, the int8 ONNX file, or None."""
    bert = model._encoder.bert
    if variant in ("fp32", "fp16"):  # fp16 computes in fp32 on these CPUs (main() says so)
        export_onnx_int8(bert, folder)  # writes the fp32 encoder.onnx on the way
        return {"torch fp32": _bert_runner(bert), "ONNX Runtime fp32": _ort_runner(ort_session(folder / "encoder.onnx", 1))}, None
    if variant == "torch int8":
        quantized = torch_int8(model)
        return {"torch int8 dynamic": _bert_runner(quantized._encoder.bert)}, quantized
    if variant == "ONNX Runtime int8":
        int8 = export_onnx_int8(bert, folder)
        return {"ONNX Runtime int8": _ort_runner(ort_session(int8, 1))}, int8
    raise ValueError(f"baseline variant {variant!r}: expected one of {', '.join(BASELINE_VARIANTS)}")


def _models(args, folder: Path) -> Tuple[List[Dict], Dict[str, Dict[str, Callable]]]:
    """The models (without latency yet) and, per model, the runners whose fastest is its latency."""
    import torch
    from allennlp.models.archival import load_archive
    from safetensors.torch import save_file

    models, runners = [], {}
    for runs_dir, (run, (recipe, bits)) in ((d, r) for d in args.runs for r in RECIPES.items()):
        cache = runs_dir / "table"
        cache.mkdir(parents=True, exist_ok=True)
        trained, packed = runs_dir / run / "model.tar.gz", runs_dir / run / "packed.tar.gz"
        if not (trained.is_file() and packed.is_file()):
            if (runs_dir / run).is_dir():
                print(f"{runs_dir / run}: not trained and exported yet, left out")
            continue
        provenance = training_record(trained)
        label = _run_label(recipe, provenance)
        model = load_archive(str(trained)).model.eval()
        models.append({"model": f"{label} (trained, torch)", "bits": bits, "kind": "recipe as trained",
                       "perplexity": whole_file_perplexities(run, trained, cache, args.data_dir),
                       "file_bytes": trained.stat().st_size, "trained": provenance})
        runners[models[-1]["model"]] = {"torch (fake-quantized)": _torch_runner(model._encoder)}
        models.append({"model": f"{label} (packed)", "bits": bits, "kind": "packed export",
                       "perplexity": whole_file_perplexities(f"{run}, packed", packed, cache, args.data_dir),
                       "file_bytes": packed.stat().st_size, "trained": provenance})
        runners[models[-1]["model"]] = {"bitmaps_runtime": _packed_runner(packed)}
    models += _stand_ins(args, runners)
    for path in args.baselines:
        records = json.loads(Path(path).read_text())["records"]
        by_model: Dict[str, Dict] = {}
        for record in records:
            entry = by_model.setdefault(record["model"], {**record, "perplexity": {}})
            entry["perplexity"][record["data"]] = record["perplexity"]
        for name, entry in by_model.items():
            archive_path = Path(entry["trained"]["archive"])
            model = load_archive(str(archive_path)).model.eval()
            variant = entry["variant"]
            item = {"model": name, "bits": entry["bits"], "kind": "baseline", "variant": variant,
                    "perplexity": entry["perplexity"], "trained": entry["trained"]}
            sub = folder / str(len(models))
            sub.mkdir()
            runners[name], made = _baseline_runners(variant, model, sub)
            if variant == "fp32":
                item["file_bytes"] = archive_path.stat().st_size
            elif variant == "fp16":
                half, seen = {}, set()
                for key, value in fp16(model).state_dict().items():
                    if value.data_ptr() not in seen:  # the model reaches its encoder under two names
                        seen.add(value.data_ptr())
                        half[key] = value.half() if value.is_floating_point() else value
                item["file_bytes"] = _file_bytes(lambda p: save_file({k: v.contiguous() for k, v in half.items()}, str(p)), folder, f"{len(models)}_fp16.safetensors")
            elif variant == "torch int8":
                item["file_bytes"] = _file_bytes(lambda p: torch.save(made.state_dict(), p), folder, f"{len(models)}_int8.pt")
            else:  # ONNX Runtime int8: the encoder file, plus the MLM head's transform it does not hold
                item["file_bytes"] = made.stat().st_size
                item["note"] = "encoder file only (the tied decoder's table is in it; the head's 0.6 MB transform is not)"
            models.append(item)
    return models, runners


def _stand_ins(args, runners: Dict[str, Dict[str, Callable]]) -> List[Dict]:
    """Real-budget runs whose archives are gone (runs/ does not survive between sessions): their
    whole-file perplexities come from the committed `--long-results` JSON (the trained model, as
    `scripts/long_results.py` scored it), their latency and file size from a packed archive of the
    same config trained a few steps (the kernels do the same work whatever the weights), and both
    sources are named in the record."""
    models = []
    for spec in args.stand_ins:
        run, sep, packed = spec.partition("=")
        if not sep or run not in RECIPES:
            sys.exit(f"--stand-ins {spec}: expected RUN=PACKED_ARCHIVE with RUN one of {sorted(RECIPES)}")
        packed_path = Path(packed)
        if not packed_path.is_file():
            sys.exit(f"--stand-ins {spec}: {packed_path}: no such file")
        records = [r for r in json.loads(args.long_results.read_text())["records"] if r.get("run") == run]
        perplexity = {r["data"]: r["perplexity"] for r in records}
        missing = [s.lower() for s in TEST_SPLITS if s.lower() not in perplexity]
        if missing:
            sys.exit(f"{args.long_results}: run {run!r} has no record for {', '.join(missing)}")
        recipe, bits = RECIPES[run]
        trained = records[0]["trained"]
        name = f"{_run_label(recipe, trained)} (packed stand-in)"
        runners[name] = {"bitmaps_runtime": _packed_runner(packed_path)}
        models.append({"model": name, "bits": bits, "kind": "packed stand-in", "perplexity": perplexity,
                       "file_bytes": packed_path.stat().st_size, "trained": trained,
                       "note": f"perplexity of the trained archive from {args.long_results.name} (that archive is gone); "
                               f"latency and file size of {packed_path}, the same config trained a few steps and exported"})
    return models


def _stand_in_folders(specs: List[str]) -> Dict[Path, Path]:
    """`OLD=NEW` pairs: the folder of a report's archive, and the stand-in folder that times it."""
    folders = {}
    for spec in specs:
        old, sep, new = spec.partition("=")
        if not sep or not old or not new:
            sys.exit(f"--stand-in-folders {spec}: expected OLD_FOLDER=STAND_IN_FOLDER")
        if not Path(new).is_dir():
            sys.exit(f"--stand-in-folders {spec}: {new}: no such folder (scripts/stand_ins.sh makes them)")
        folders[Path(old)] = Path(new)
    return folders


def _variant_of(model: Dict) -> str:
    """A baseline's variant: recorded since the re-timing, else the suffix its label ends with
    (`scripts/baselines.py` labels each `LABEL (VARIANT)`)."""
    if "variant" in model:
        return model["variant"]
    for variant in BASELINE_VARIANTS:
        if model["model"].endswith(f"({variant})"):
            return variant
    raise ValueError(f"baseline {model['model']!r}: its label names none of {', '.join(BASELINE_VARIANTS)}")


def _retimed_models(args, folder: Path) -> Tuple[List[Dict], Dict[str, Dict[str, Callable]]]:
    """An earlier report's models with their perplexities, file sizes and provenance, and runners
    that time each through a stand-in archive of its config (`--stand-in-folders`): the trained
    archives behind a report do not survive between sessions, and a kernel does the same work
    whatever its weights hold."""
    from allennlp.models.archival import load_archive

    report = json.loads(args.retime.read_text())
    folders = _stand_in_folders(args.stand_in_folders)
    models, runners, loaded = [], {}, {}
    for earlier in report["models"]:
        source = Path(earlier["trained"]["archive"]).parent
        if source not in folders:
            sys.exit(f"{args.retime}: model {earlier['model']!r} was trained in {source}: "
                     f"give --stand-in-folders {source}=STAND_IN_FOLDER")
        kind = earlier["kind"]
        name = "packed.tar.gz" if kind in ("packed export", "packed stand-in") else "model.tar.gz"
        stand_in = folders[source] / name
        if not stand_in.is_file():
            sys.exit(f"--stand-in-folders {source}={folders[source]}: {stand_in}: no such file "
                     f"(model {earlier['model']!r} needs it)")
        model = {k: v for k, v in earlier.items()
                 if k not in ("runtime", "latency_ms", "latency_spread_ms", "front_latency", "front_size")}
        model["latency_stand_in"] = str(stand_in)
        if name == "packed.tar.gz":
            runners[model["model"]] = {"bitmaps_runtime": _packed_runner(stand_in)}
        else:
            if stand_in not in loaded:
                loaded[stand_in] = load_archive(str(stand_in)).model.eval()
            if kind == "baseline":
                sub = folder / str(len(models))
                sub.mkdir()
                runners[model["model"]], _ = _baseline_runners(_variant_of(earlier), loaded[stand_in], sub)
            else:
                runners[model["model"]] = {"torch (fake-quantized)": _torch_runner(loaded[stand_in]._encoder)}
        models.append(model)
    return models, runners


def _pareto(points: List[Tuple[float, float]]) -> List[bool]:
    """True where no other point is at most as large in both coordinates and smaller in one."""
    return [
        not any(x2 <= x and y2 <= y and (x2 < x or y2 < y) for j, (x2, y2) in enumerate(points) if j != i)
        for i, (x, y) in enumerate(points)
    ]


def _plot(models: List[Dict], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for ax, key, label, front in (
        (axes[0], "latency_ms", "encoder latency, batch 1 x 128, 1 thread (ms)", "front_latency"),
        (axes[1], "file_mib", "whole file (MiB)", "front_size"),
    ):
        for m in models:
            x, y = m[key], m["perplexity"]["wikitext-2 test"]
            marker = {"packed export": "o", "packed stand-in": "^", "recipe as trained": "x", "baseline": "s"}[m["kind"]]
            ax.scatter(x, y, marker=marker, color="tab:red" if m[front] else "tab:gray", s=40)
            ax.annotate(m["model"], (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
        on = sorted((m[key], m["perplexity"]["wikitext-2 test"]) for m in models if m[front])
        ax.plot([p[0] for p in on], [p[1] for p in on], color="tab:red", linewidth=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("WikiText-2 test perplexity (masked LM)")
        ax.grid(True, which="both", linewidth=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, nargs="+", default=[REPO / "runs" / "recipes_full"],
                        help="folders of recipe runs (scripts/packed_parity.sh, scripts/long_runs.sh)")
    parser.add_argument("--baselines", nargs="*", default=[str(REPO / "results" / "baselines.json")])
    parser.add_argument("--stand-ins", nargs="*", default=[], metavar="RUN=PACKED_ARCHIVE",
                        help="runs whose archives are gone: perplexity from --long-results, latency and size from this packed archive")
    parser.add_argument("--long-results", type=Path, default=REPO / "results" / "long_runs.json")
    parser.add_argument("--data-dir", type=Path, default=REPO / ".." / "shared" / "data")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--out", type=Path, default=REPO / "results")
    parser.add_argument("--retime", type=Path, metavar="REPORT_JSON",
                        help="re-measure only the latencies of an earlier report's models, each through a stand-in archive of its "
                             "config (--stand-in-folders; scripts/stand_ins.sh makes them); every other figure is carried over")
    parser.add_argument("--stand-in-folders", nargs="*", default=[], metavar="OLD_FOLDER=STAND_IN_FOLDER",
                        help="with --retime: the folder of a model's trained archive in the report, and the folder of its stand-in")
    args = parser.parse_args()
    if args.stand_in_folders and not args.retime:
        parser.error("--stand-in-folders needs --retime")
    import numpy as np

    import bench_runtime
    import bitmaps_allennlp  # noqa: F401
    from bitmaps_runtime.native import backend
    from timing import cpu_name

    with tempfile.TemporaryDirectory() as tmp:
        models, runners = (_retimed_models if args.retime else _models)(args, Path(tmp))
        flat = {f"{name} | {runtime}": run for name, by_runtime in runners.items() for runtime, run in by_runtime.items()}
        ids = np.random.default_rng(0).integers(1000, 30000, size=(1, SEQ), dtype=np.int64)
        ones = np.ones((1, SEQ), np.int64)
        print(f"timing {len(flat)} encoders, {args.rounds} rounds", flush=True)
        samples = bench_runtime.interleaved_ms(flat, {k: (ids, ones) for k in flat}, args.rounds)
    for m in models:
        measured = {runtime: statistics.median(samples[f"{m['model']} | {runtime}"]) for runtime in runners[m["model"]]}
        m["runtime"], m["latency_ms"] = min(measured.items(), key=lambda kv: kv[1])
        m["latency_spread_ms"] = [min(samples[f"{m['model']} | {m['runtime']}"]), max(samples[f"{m['model']} | {m['runtime']}"])]
        m["file_mib"] = m["file_bytes"] / 2**20
    # a fp16 file computes in fp32 on these CPUs: its latency is its fp32 model's
    fp32_latency = {m["model"].replace("(fp32)", ""): m for m in models if m["model"].endswith("(fp32)")}
    for m in models:
        if m["model"].endswith("(fp16)") and m["model"].replace("(fp16)", "") in fp32_latency:
            source = fp32_latency[m["model"].replace("(fp16)", "")]
            m["runtime"], m["latency_ms"] = f"{source['runtime']} (fp16 widened to fp32)", source["latency_ms"]
    for key, front in (("latency_ms", "front_latency"), ("file_bytes", "front_size")):
        for m, on in zip(models, _pareto([(m[key], m["perplexity"]["wikitext-2 test"]) for m in models])):
            m[front] = on
    machine = {"cpu": cpu_name(), "flags": bench_runtime.cpu_flags(), "kernel_path": backend(), "threads": 1}
    result = {"what": __doc__.strip().splitlines()[0], "machine": machine, "rounds": args.rounds, "seq": SEQ, "models": models}
    if args.retime:
        earlier = json.loads(args.retime.read_text())
        result["retimed_from"] = {
            "report": str(args.retime), "machine": earlier.get("machine"),
            "note": "latencies measured here through stand-in archives of each model's config (latency_stand_in: trained 2 steps by "
                    "scripts/stand_ins.sh); perplexities, file sizes and provenance are the earlier report's, from the trained archives",
        }
    write_json(args.out / "pareto.json", result)
    _plot(models, args.out / "pareto.png", _title(result))
    print(render(result))


def _title(result: Dict) -> str:
    machine = result["machine"]
    title = f"{machine['cpu']}, kernel path {machine['kernel_path']}: red = Pareto front"
    if "retimed_from" in result:
        title += f"\nlatencies re-timed through stand-ins of each config; perplexities and sizes from {Path(result['retimed_from']['report']).name}"
    return title


def render(result: Dict) -> str:
    lines = [
        "| model | bits | WikiText-2 test | PTB test | latency (ms) | runtime | file (MiB) | front (latency / size) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in sorted(result["models"], key=lambda m: m["perplexity"]["wikitext-2 test"]):
        fronts = " / ".join("yes" if m[f] else "-" for f in ("front_latency", "front_size"))
        lines.append(
            f"| {m['model']} | {m['bits']} | {m['perplexity']['wikitext-2 test']:.2f} | {m['perplexity']['ptb test']:.2f} | "
            f"{m['latency_ms']:.1f} | {m['runtime']} | {m['file_mib']:.1f} | {fronts} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
