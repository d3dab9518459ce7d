#!/usr/bin/env python
"""
The real-budget runs of `scripts/long_runs.sh`: each run's validation curve (one row of numbers per
epoch, from AllenNLP's metrics_epoch_N.json: the first 640 blocks of WikiText-2 valid) and, for
each finished run, its whole-file WikiText-2 and PTB test perplexity against the teacher it was
distilled from, with the accuracy issue's target ratio. Unfinished runs are reported as such, with
the epochs they have. Writes one JSON under results/ and prints Markdown for README.

    python scripts/long_results.py --runs runs/long --teacher runs/recipes_full/teacher/model.tar.gz

Runs that this machine's RUNS lacks keep their entries from the existing JSON (runs/ does not
survive between sessions); runs it has replace theirs.

Whole-file evaluations are cached in RUNS/table/ under the names `scripts/pareto.py` uses, so a
rerun (or the Pareto report on RUNS) only evaluates what is new.
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "benchmarks"))

from atomic_json import write_json  # noqa: E402
from baselines import training_record  # noqa: E402
from pareto import RECIPES, whole_file_perplexities  # noqa: E402

# run folder of long_runs.sh -> the run folder its teacher is (None: the fp32 teacher)
TEACHERS = {"bit_stage1": None, "bitnet_b158": None, "bit_stage2": "bit_stage1", "bit_stage2_int8_tables": "bit_stage1"}
# the accuracy issue's targets: WikiText-2 test perplexity / that of the teacher distilled from
TARGETS = {"W1A8": 1.15, "W1.58A8": 1.10, "W1A1": 2.5}
TARGET_DATA = "wikitext-2 test"


def curve(run: Path) -> List[Dict]:
    rows = []
    for path in sorted(run.glob("metrics_epoch_*.json"), key=lambda p: int(p.stem.rsplit("_", 1)[1])):
        metrics = json.loads(path.read_text())
        rows.append({key: metrics.get(key) for key in (
            "epoch", "validation_perplexity", "validation_accuracy", "training_perplexity", "training_duration")})
    return rows


def planned_epochs(run: Path) -> Optional[int]:
    config = run / "config.json"
    return json.loads(config.read_text()).get("trainer", {}).get("num_epochs") if config.is_file() else None


def collect(runs_dir: Path, teacher: Path, data_dir: Path, evaluate_files: bool = True) -> Tuple[List[Dict], List[Dict]]:
    """Each run's curve and status, and the perplexity records of the finished ones."""
    cache = runs_dir / "table"
    cache.mkdir(exist_ok=True)
    finished = {run: (runs_dir / run / "model.tar.gz").is_file() for run in TEACHERS}
    runs, records = [], []
    teacher_ppl = whole_file_perplexities("teacher", teacher, cache, data_dir) if evaluate_files and any(finished.values()) else {}
    perplexities: Dict[str, Dict[str, float]] = {}
    for run, teacher_run in TEACHERS.items():
        folder = runs_dir / run
        if not (folder / "config.json").is_file():
            continue
        label, bits = RECIPES[run]
        rows, epochs = curve(folder), planned_epochs(folder)
        entry = {"run": run, "model": label, "bits": bits, "planned_epochs": epochs,
                 "status": "finished" if finished[run] else f"in progress: {len(rows)} of {epochs} epochs",
                 "teacher": "fp32 teacher" if teacher_run is None else RECIPES[teacher_run][0],
                 "validation": "first 640 blocks of WikiText-2 valid, deterministic masks", "curve": rows}
        runs.append(entry)
        if not (finished[run] and evaluate_files):
            continue
        archive = folder / "model.tar.gz"
        perplexities[run] = whole_file_perplexities(run, archive, cache, data_dir)  # the names pareto.py caches under
        reference = teacher_ppl if teacher_run is None else perplexities.get(teacher_run)
        for data, value in perplexities[run].items():
            trained = training_record(archive)
            record = {"run": run, "model": f"{label}, {trained.get('steps')} steps", "bits": bits, "data": data,
                      "perplexity": value, "trained": trained}
            if reference:
                record["teacher_perplexity"] = reference[data]
                record["ratio_to_teacher"] = round(value / reference[data], 4)
                if teacher_run is not None and teacher_ppl:
                    record["ratio_to_fp32_teacher"] = round(value / teacher_ppl[data], 4)
                if data == TARGET_DATA:
                    record["target_ratio"] = TARGETS[bits]
                    record["target_met"] = record["ratio_to_teacher"] <= TARGETS[bits]
            records.append(record)
    if teacher_ppl:
        for data, value in teacher_ppl.items():
            records.insert(0, {"model": "teacher (fp32)", "bits": "fp32", "data": data, "perplexity": value,
                               "trained": training_record(teacher)})
    return runs, records


def record_run(record: Dict) -> Optional[str]:
    """The long_runs.sh run a record belongs to ("teacher" for the teacher's), also for records
    written before they named it."""
    if "run" in record:
        return record["run"]
    if record["model"].startswith("teacher"):
        return "teacher"
    # the longest label that starts the record's: "BiT stage 2, int8 tables trained, ..." is not "BiT stage 2"'s
    matches = [run for run in TEACHERS if record["model"].startswith(RECIPES[run][0] + ",")]
    return max(matches, key=lambda run: len(RECIPES[run][0]), default=None)


def merge_earlier(previous: Dict, runs: List[Dict], records: List[Dict]) -> Tuple[List[Dict], List[Dict]]:
    """Runs are lost with the machine between sessions (runs/ is not kept): a run this session's
    folder lacks keeps its curve and records from `previous` (the committed JSON), marked with the
    session that measured it, and so do the teacher records when this session has none. A run this
    session has replaces its earlier entry, unless this session's is unfinished and the earlier
    one finished (a re-run under way, e.g. to feed a later stage, must not erase the result)."""
    earlier_finished = {r["run"] for r in previous.get("runs", []) if r["status"] == "finished"}
    superseded = {r["run"] for r in runs if r["status"] != "finished" and r["run"] in earlier_finished}
    runs = [r for r in runs if r["run"] not in superseded]
    present = {r["run"] for r in runs}
    kept = [dict(r, measured="an earlier session (this machine's run folder is missing or unfinished)")
            for r in previous.get("runs", []) if r["run"] not in present]
    keep = {r["run"] for r in kept}
    has_teacher = any(record_run(r) == "teacher" for r in records)
    if not has_teacher:
        keep.add("teacher")
    earlier = [r for r in previous.get("records", []) if record_run(r) in keep]
    order = list(TEACHERS)
    merged_runs = sorted(runs + kept, key=lambda r: order.index(r["run"]) if r["run"] in order else len(order))
    return merged_runs, [r for r in earlier if record_run(r) == "teacher"] + records + [r for r in earlier if record_run(r) != "teacher"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "long")
    parser.add_argument("--teacher", type=Path, default=REPO / "runs" / "recipes_full" / "teacher" / "model.tar.gz")
    parser.add_argument("--data-dir", type=Path, default=REPO / ".." / "shared" / "data")
    parser.add_argument("--json", type=Path, default=REPO / "results" / "long_runs.json")
    parser.add_argument("--no-evaluate", action="store_true", help="curves only: no whole-file evaluation")
    args = parser.parse_args()
    if not args.runs.is_dir():
        sys.exit(f"{args.runs}: no such folder (run scripts/long_runs.sh first)")
    evaluate_files = not args.no_evaluate
    if evaluate_files and not args.teacher.is_file():
        sys.exit(f"{args.teacher}: no such archive (the fp32 teacher the runs were distilled from)")
    runs, records = collect(args.runs, args.teacher, args.data_dir, evaluate_files)
    if args.json.is_file():
        runs, records = merge_earlier(json.loads(args.json.read_text()), runs, records)
    write_json(args.json, {"runs": runs, "records": records})
    print(f"wrote {args.json}")
    print(markdown(runs, records))


def markdown(runs: List[Dict], records: List[Dict]) -> str:
    lines = []
    if runs:
        width = max(len(r["curve"]) for r in runs) or 1
        lines += ["| run | status | " + " | ".join(f"epoch {i + 1}" for i in range(width)) + " |",
                  "|---|---|" + "---|" * width]
        for r in runs:
            cells = [f"{row['validation_perplexity']:.1f}" for row in r["curve"]] + ["-"] * (width - len(r["curve"]))
            lines.append(f"| {r['model']} ({r['bits']}) | {r['status']} | " + " | ".join(cells) + " |")
    if records:
        lines += ["", "| model | bits | data | perplexity | x its teacher | target | met |", "|---|---|---|---|---|---|---|"]
        for r in records:
            ratio = f"{r['ratio_to_teacher']:.2f}x" if "ratio_to_teacher" in r else "-"
            target = f"<= {r['target_ratio']}x" if "target_ratio" in r else "-"
            met = {True: "yes", False: "**no**"}.get(r.get("target_met"), "-")
            lines.append(f"| {r['model']} | {r['bits']} | {r['data']} | {r['perplexity']:.2f} | {ratio} | {target} | {met} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
