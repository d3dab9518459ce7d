#!/usr/bin/env python
"""
Collects the evaluations of `scripts/packed_parity.sh` (RUNS/table/NAME__SPLIT.json, written by
`scripts/perplexity_table.py`) into one JSON of records, with each record's bits and where its
model trained, and prints the parity table: each packed archive against its source.

    python scripts/parity_results.py runs/recipes_full results/packed_parity_full.json
"""
import argparse
import json
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "benchmarks"))

from atomic_json import write_json  # noqa: E402
from baselines import training_record  # noqa: E402
from pareto import RECIPES  # noqa: E402

SPLITS = {"WikiText-2_valid": "WikiText-2 valid", "WikiText-2_test": "WikiText-2 test", "PTB_valid": "PTB valid", "PTB_test": "PTB test"}
# file-name suffix (perplexity_table's slug of "RECIPE, packed ...") -> the record's model
VARIANTS = {"": "source", "_packed": "packed, int8 tables (default)", "_packed_int8_col_tables": "packed, int8_col tables",
            "_packed_int8_g64_tables": "packed, int8_g64 tables", "_packed_fp16_tables": "packed, fp16 tables",
            "_packed_fp32_tables": "packed, fp32 tables"}


def three_digits(value: float, source: float) -> "tuple[bool, bool]":
    """Whether `value` equals `source` to 3 significant digits: (rounded to 3 digits, both are the
    same number; the difference is within half a unit of the source's third digit). Two values
    a hair apart can straddle a rounding boundary, so the second is the one a kernel can promise."""
    unit = 10.0 ** (math.floor(math.log10(abs(source))) - 2)
    return round(value / unit) == round(source / unit), abs(value - source) <= unit / 2


def collect(runs: Path):
    records = []
    for path in sorted((runs / "table").glob("*__*.json")):
        name, split = path.stem.split("__")
        recipe = next((r for r in RECIPES if name.startswith(r) and name[len(r):] in VARIANTS), None)
        if recipe is None or split not in SPLITS:
            continue
        metrics = json.loads(path.read_text())
        records.append({
            "recipe": recipe, "model": VARIANTS[name[len(recipe):]], "bits": RECIPES[recipe][1], "data": SPLITS[split],
            "perplexity": metrics["perplexity"], "accuracy": metrics.get("accuracy"),
            "trained": training_record(runs / recipe / "model.tar.gz"),
        })
    sources = {(r["recipe"], r["data"]): r["perplexity"] for r in records if r["model"] == "source"}
    for record in records:
        source = sources.get((record["recipe"], record["data"]))
        if record["model"] != "source" and source is not None:
            record["rounded_to_3_digits_equal"], record["within_half_unit_of_3rd_digit"] = three_digits(record["perplexity"], source)
    return records


def table(records) -> str:
    by = {(r["recipe"], r["model"], r["data"]): r["perplexity"] for r in records}
    splits = list(SPLITS.values())
    lines = ["| recipe | model | " + " | ".join(splits) + " |", "|---|---|" + "---|" * len(splits)]
    for recipe in RECIPES:
        for model in VARIANTS.values():
            if not any((recipe, model, s) in by for s in splits):
                continue
            cells = []
            for split in splits:
                value, source = by.get((recipe, model, split)), by.get((recipe, "source", split))
                if value is None:
                    cells.append("-")
                elif model == "source" or source is None:
                    cells.append(f"{value:.2f}")
                else:
                    cells.append(f"{value:.2f} ({(value / source - 1) * 100:+.2f}%)")
            lines.append(f"| {recipe} | {model} | " + " | ".join(cells) + " |")
    lines.append("")
    for model in list(VARIANTS.values())[1:]:
        judged = [r for r in records if r["model"] == model and "within_half_unit_of_3rd_digit" in r]
        if judged:
            lines.append(f"{model}: {sum(r['within_half_unit_of_3rd_digit'] for r in judged)} of {len(judged)} within half a unit of "
                         f"the source's 3rd digit, {sum(r['rounded_to_3_digits_equal'] for r in judged)} equal when rounded to 3 digits")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--what", help="what the records are, if not packed_parity.sh's runs (e.g. the real-budget runs)")
    args = parser.parse_args()
    from bitmaps_runtime.native import backend
    from timing import cpu_name

    records = collect(args.runs)
    result = {
        "what": args.what or ("packed parity on recipe archives (bash scripts/packed_parity.sh): each recipe trained with its "
                "config's budget (word and position tables trained int8, lib.recipe's default), exported with bitmaps-export "
                "(the default export, and one per EXPORTS --embeddings value), evaluated with allennlp evaluate on the whole "
                "files (deterministic masks); packed archives run on the C++ runtime (engine auto)"),
        "cpu": cpu_name(),
        "kernel_path": backend(),
        "recipes_done": sorted({r["recipe"] for r in records}),
        "records": records,
    }
    write_json(args.output, result)
    print(table(records))
    print(f"{len(records)} records -> {args.output}")


if __name__ == "__main__":
    main()
