#!/usr/bin/env python
"""
Validation curves of AllenNLP training runs side by side, with what set them apart: each run's
per-epoch validation perplexity (its metrics_epoch_N.json), its budget (steps, blocks per step)
and peak learning rate, its wall time and status. For comparisons that a whole-file evaluation
would not change, such as a learning-rate probe. Writes one JSON under results/ and prints
Markdown.

    python scripts/run_curves.py --run "lr 2e-4=runs/recipes_i8/bit_stage1" \\
        --run "lr 5e-4=runs/probe/s1_lr5e-4" --json results/lr_probe_bit_stage1.json --what "..."
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from atomic_json import write_json  # noqa: E402
from baselines import training_record  # noqa: E402
from long_results import curve, planned_epochs  # noqa: E402


def run_entry(label: str, folder: Path) -> Dict:
    if not (folder / "config.json").is_file():
        sys.exit(f"{folder}: no config.json (not an AllenNLP serialization directory)")
    rows = curve(folder)
    epochs = planned_epochs(folder)
    finished = (folder / "model.tar.gz").is_file()
    return {"label": label, "run": str(folder), "status": "finished" if finished else f"in progress: {len(rows)} of {epochs} epochs",
            "trained": training_record(folder / "model.tar.gz"), "curve": rows}


def markdown(runs: List[Dict]) -> str:
    width = max((len(r["curve"]) for r in runs), default=0) or 1
    lines = ["| run | peak lr | steps | " + " | ".join(f"epoch {i + 1}" for i in range(width)) + " |",
             "|---|---|---|" + "---|" * width]
    for r in runs:
        cells = [f"{row['validation_perplexity']:.1f}" for row in r["curve"]] + ["-"] * (width - len(r["curve"]))
        lines.append(f"| {r['label']} | {r['trained'].get('learning_rate', '-')} | {r['trained'].get('steps', '-')} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", required=True, metavar="LABEL=FOLDER",
                        help="a serialization directory and its label (repeat)")
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--what", default="", help="what the runs compare, kept in the JSON")
    args = parser.parse_args()
    runs = []
    for item in args.run:
        label, sep, folder = item.partition("=")
        if not sep or not label or not folder:
            sys.exit(f"--run {item!r}: expected LABEL=FOLDER")
        runs.append(run_entry(label, Path(folder)))
    write_json(args.json, {"what": args.what, "validation": "the config's validation data and masks", "runs": runs})
    print(f"wrote {args.json}")
    print(markdown(runs))


if __name__ == "__main__":
    main()
