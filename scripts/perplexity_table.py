#!/usr/bin/env python
"""
Evaluate archives on WikiText-2 and PTB valid/test with `allennlp evaluate` (the deterministic
masked perplexity of the archive's validation reader) and write the results as JSON and as a
Markdown table.

    python scripts/perplexity_table.py --out runs/table \
        --model teacher=runs/teacher/model.tar.gz \
        --model "data-free binarized=runs/teacher/model.tar.gz" \
            --overrides "data-free binarized={\"model.text_field_embedder.token_embedders.tokens.binarize\": true}" \
        --model student=runs/binary/model.tar.gz

Each evaluation's metrics are kept in OUT/NAME__SPLIT.json; an existing one is reused, so an
interrupted table resumes where it stopped.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))
from atomic_json import write_json  # noqa: E402

SPLITS = {
    "WikiText-2 valid": "wikitext-2/valid.txt",
    "WikiText-2 test": "wikitext-2/test.txt",
    "PTB valid": "ptb/valid.txt",
    "PTB test": "ptb/test.txt",
}


def _pairs(values: List[str], flag: str) -> Dict[str, str]:
    pairs = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            sys.exit(f"{flag} expects NAME=VALUE, got {value!r}")
        pairs[name] = rest
    return pairs


def evaluate(archive: str, data: Path, overrides: str, out_file: Path) -> Dict:
    if out_file.is_file():
        return json.loads(out_file.read_text())
    command = [sys.executable, "-m", "allennlp", "evaluate", archive, str(data)]
    command += ["--output-file", str(out_file) + ".tmp"]
    if overrides:
        command += ["-o", overrides]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    metrics = json.loads(Path(str(out_file) + ".tmp").read_text())
    metrics["eval_seconds"] = round(time.perf_counter() - started, 1)
    write_json(out_file, metrics)
    os.remove(str(out_file) + ".tmp")
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="NAME=ARCHIVE")
    parser.add_argument("--overrides", action="append", default=[], help="NAME=JSON overrides")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--out", required=True, help="folder for the per-evaluation JSON and the table")
    parser.add_argument("--split", action="append", choices=sorted(SPLITS), help="only these files (default: all four)")
    args = parser.parse_args()
    splits = {name: SPLITS[name] for name in SPLITS if not args.split or name in args.split}
    models, overrides = _pairs(args.model, "--model"), _pairs(args.overrides, "--overrides")
    unknown = set(overrides) - set(models)
    if unknown:
        sys.exit(f"--overrides names models that no --model defines: {sorted(unknown)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: Dict[str, Dict[str, Dict]] = {}
    for name, archive in models.items():
        results[name] = {}
        for split, relative in splits.items():
            data = Path(args.data_dir) / relative
            # allennlp evaluate splits --output-file on commas: keep file names to safe characters
            slug = re.sub(r"[^A-Za-z0-9._()-]+", "_", f"{name}__{split}")
            print(f"[{name}] {split}", flush=True)
            results[name][split] = evaluate(archive, data, overrides.get(name, ""), out / f"{slug}.json")
    (out / "results.json").write_text(json.dumps(results, indent=2))
    header = "| model | " + " | ".join(splits) + " |"
    lines = [header, "|---" * (len(splits) + 1) + "|"]
    for name, by_split in results.items():
        cells = [f"{by_split[s]['perplexity']:.2f}" for s in splits]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    (out / "table.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
