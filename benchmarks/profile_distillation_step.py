"""
Where one distillation step's time goes, on this machine's CPU (issue: training throughput).

Builds a recipe's student exactly as its config does (`training_configs/<recipe>.jsonnet`), with
the real encoder (all-MiniLM-L6-v2) and a teacher of the teacher's shape (the same encoder plus
an MLM head, written to a temporary folder, since the trained teacher archive is not committed),
reads batches of the recipe's size from WikiText-2 train, and times each phase of a training
step: reading and indexing a batch, the teacher's forward, the student's forward and losses,
the backward pass, gradient clipping and the recipe's optimizer step. Then one step under torch's
profiler lists the top operators. Prints a table and writes JSON.

`--variants eager,compiled` times the student's layers eager and compiled (`compile_layers`) on
the same model in one process, one step of each per round, interleaved; the profile is of the
last variant.

    python benchmarks/profile_distillation_step.py --recipe bit_stage1_w1a8 --steps 6
"""
import argparse
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # a site package is also called `benchmarks`

from timing import cpu_name  # noqa: E402


def _teacher_checkpoint(encoder: str, folder: Path) -> str:
    from transformers import AutoTokenizer, BertForMaskedLM

    model = BertForMaskedLM.from_pretrained(encoder)  # the encoder's weights, a new MLM head
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(encoder).save_pretrained(folder)
    return str(folder)


TABLES = ("word_embeddings", "position_embeddings")


def _fp32_tables(tokens: dict) -> None:
    """The recipe with full-precision embedding tables (`lib.recipe(tables="fp32")`): what the
    recipes computed before their tables trained as int8 (commit 24827ed's step, for one)."""
    tokens["binarized_components"] = [c for c in tokens.get("binarized_components", []) if c not in TABLES]
    for table in TABLES:
        tokens.get("component_overrides", {}).pop(table, None)


def _build(recipe: str, teacher: str, batch_size: int, compile_layers: bool, fp32_tables: bool = False):
    import bitmaps_allennlp  # noqa: F401
    from allennlp.common import Params
    from allennlp.data import DatasetReader, Vocabulary
    from allennlp.models import Model

    config = Params.from_file(str(REPO / "training_configs" / f"{recipe}.jsonnet")).as_dict(quiet=True)
    model_params = config["model"]
    model_params.pop("initializer", None)  # starts from the encoder's weights (same compute)
    if "teacher" in model_params:
        model_params["teacher"] = teacher
    model_params["text_field_embedder"]["token_embedders"]["tokens"]["compile_layers"] = compile_layers
    if fp32_tables:
        _fp32_tables(model_params["text_field_embedder"]["token_embedders"]["tokens"])
    # from_params consumes the dicts it is given
    vocab = Vocabulary.from_params(Params(copy.deepcopy(config["vocabulary"])))
    model = Model.from_params(vocab=vocab, params=Params(copy.deepcopy(model_params)))
    reader = DatasetReader.from_params(Params(copy.deepcopy(config["dataset_reader"])))
    batch_size = batch_size or config["data_loader"]["batch_size"]
    return config, model, reader, vocab, batch_size


def _batches(reader, vocab, path: str, batch_size: int):
    from allennlp.data import Batch

    block = []
    for instance in reader.read(path):
        reader.apply_token_indexers(instance)
        block.append(instance)
        if len(block) == batch_size:
            batch = Batch(block)
            batch.index_instances(vocab)
            yield batch.as_tensor_dict()
            block = []


def _optimizer(model, params: dict):
    """The recipe's optimizer, as `allennlp train` builds it (the trainer's Python loop around it,
    logging and checkpoints, is not timed)."""
    from allennlp.common import Params
    from allennlp.training.optimizers import Optimizer

    parameters = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    return Optimizer.from_params(model_parameters=parameters, params=Params(copy.deepcopy(params)))


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="bit_stage1_w1a8")
    parser.add_argument("--steps", type=int, default=6, help="timed steps (after 2 warm-up steps)")
    parser.add_argument("--batch-size", type=int, default=0, help="blocks per step (default: the recipe's)")
    parser.add_argument("--data", default=str(REPO / ".." / "shared" / "data" / "wikitext-2" / "train.txt"))
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "distillation_step.json"))
    parser.add_argument("--label", default="", help="a name for this measurement in the JSON")
    parser.add_argument("--variants", default="eager", help="comma-separated: eager, compiled")
    parser.add_argument("--fp32-tables", action="store_true", help="full-precision embedding tables, as recipes had before")
    parser.add_argument(
        "--no-keep-freed-memory", action="store_true",
        help="leave malloc as it is, even where the recipe's trainer keeps freed memory (bitmaps_keep_freed_memory)",
    )
    args = parser.parse_args()
    variants = args.variants.split(",")
    if not variants or set(variants) - {"eager", "compiled"}:
        parser.error(f"--variants: expected some of eager, compiled; got {args.variants!r}")

    encoder = str(REPO / ".." / "shared" / "data" / "models" / "all-MiniLM-L6-v2")
    with tempfile.TemporaryDirectory() as folder:
        teacher = _teacher_checkpoint(encoder, Path(folder) / "teacher")
        config, model, reader, vocab, batch_size = _build(
            args.recipe, teacher, args.batch_size, "compiled" in variants, args.fp32_tables
        )
        model.train()
        trainer = config["trainer"]
        optimizer = _optimizer(model, trainer["optimizer"])
        # what the recipe's trainer callbacks do at the start of training
        keeps_freed_memory = any(c.get("type") == "bitmaps_keep_freed_memory" for c in trainer.get("callbacks", []))
        if keeps_freed_memory and not args.no_keep_freed_memory:
            from bitmaps_allennlp.training.freed_memory import keep_freed_memory

            keeps_freed_memory = keep_freed_memory()
        else:
            keeps_freed_memory = False
        batches = _batches(reader, vocab, args.data, batch_size)
        names = ("data", "teacher", "student_and_losses", "backward", "clip_and_optimizer", "step")
        phases = {variant: {name: [] for name in names} for variant in variants}

        def train_step():
            step_start = time.perf_counter()
            batch, data_s = _timed(lambda: next(batches))
            tokens = batch["tokens"]["tokens"]
            masked = batch["masked_positions"].bool()
            record = bool({"attention", "direction"} & set(model._loss_weights))
            teacher_out, teacher_s = _timed(
                lambda: model._teacher_outputs(tokens["token_ids"], tokens["mask"], tokens.get("type_ids"), masked, record)
            )

            def student():
                internals, logits = model._student_outputs(
                    tokens["token_ids"], tokens["mask"], tokens.get("type_ids"), masked, record
                )
                terms = model._loss_terms(internals, logits, teacher_out, tokens["mask"], masked, batch["target_ids"])
                return sum(model._loss_weights[name] * value for name, value in terms.items())

            loss, student_s = _timed(student)
            _, backward_s = _timed(loss.backward)

            def update():
                torch.nn.utils.clip_grad_norm_(model.parameters(), trainer.get("grad_norm", 1.0))
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

            _, update_s = _timed(update)
            return data_s, teacher_s, student_s, backward_s, update_s, time.perf_counter() - step_start

        def stance(variant: str):
            return torch.compiler.set_stance("force_eager" if variant == "eager" else "default")

        for step in range(args.steps + 2):  # the first two rounds warm up (and compile)
            for variant in variants:
                with stance(variant):
                    times = train_step()
                if step >= 2:
                    for name, value in zip(names, times):
                        phases[variant][name].append(value)

        with stance(variants[-1]), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
            batch = next(batches)
            model(**batch)["loss"].backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        top = profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=18)

    print(f"recipe {args.recipe}, {batch_size} blocks of {config['dataset_reader']['max_length']}, "
          f"torch threads {torch.get_num_threads()}, {args.steps} rounds")
    medians = {}
    for variant in variants:
        medians[variant] = {name: statistics.median(values) for name, values in phases[variant].items()}
        print(f" {variant}")
        for name, value in medians[variant].items():
            spread = (min(phases[variant][name]), max(phases[variant][name]))
            print(f"  {name:<20} {value * 1000:9.1f} ms  (min {spread[0] * 1000:.1f}, max {spread[1] * 1000:.1f})")
    print(top)
    record = {
        "label": args.label,
        "recipe": args.recipe,
        "blocks_per_step": batch_size,
        "block_length": config["dataset_reader"]["max_length"],
        "torch_threads": torch.get_num_threads(),
        "steps": args.steps,
        "interleaved_variants": variants,
        "optimizer": trainer["optimizer"]["type"],
        "tables": "fp32" if args.fp32_tables else "as the recipe",
        "keep_freed_memory": keeps_freed_memory,
        "median_ms": {v: {name: round(value * 1000, 1) for name, value in m.items()} for v, m in medians.items()},
        "spread_ms": {
            v: {name: [round(min(x) * 1000, 1), round(max(x) * 1000, 1)] for name, x in phases[v].items()} for v in variants
        },
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__},
    }
    output = Path(args.output)
    previous = json.loads(output.read_text()) if output.is_file() else []
    output.write_text(json.dumps(previous + [record], indent=2) + "\n")
    print(f"appended to {output}")


if __name__ == "__main__":
    main()
