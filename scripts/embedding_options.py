"""
What `bitmaps-export --embeddings` costs and saves, measured: exports a trained archive with each
option (int8, fp16, fp32), evaluates the source and every export with `allennlp evaluate` on
the same file and masks, and records the bytes of every part, of the packed file and of the
whole archive against the fp32 source archive. Writes `results/embedding_options.json`.

    python scripts/embedding_options.py runs/demo_w1a8/model.tar.gz --data ../shared/data/wikitext-2/valid.txt \
        --label "demo W1A8 (data-free conversion + 80 MLM steps)"
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _evaluate(archive: Path, data: str, output: Path) -> dict:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "allennlp", "evaluate", str(archive), data, "--output-file", str(output),
         "-o", json.dumps({"validation_dataset_reader.max_instances": None, "dataset_reader.max_instances": None})],
        cwd=REPO, check=True, capture_output=True, text=True,
    )
    metrics = json.loads(output.read_text())
    return {"perplexity": metrics["perplexity"], "accuracy": metrics["accuracy"], "seconds": round(time.perf_counter() - start, 1)}


def _member_bytes(archive: Path, name: str) -> int:
    with tarfile.open(archive) as tar:
        return tar.getmember(name).size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archive")
    parser.add_argument("--data", default=str(REPO / ".." / "shared" / "data" / "wikitext-2" / "valid.txt"))
    parser.add_argument("--label", required=True, help="what the archive is (recipe, steps)")
    parser.add_argument("--output", default=str(REPO / "results" / "embedding_options.json"))
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "benchmarks"))  # a site package is also called `benchmarks`
    import bitmaps_allennlp  # noqa: F401
    from timing import cpu_name
    from bitmaps_allennlp.commands.packed_archive import PACKED_FILE_NAME, export_archive
    from bitmaps_allennlp.packed.export import EMBEDDING_OPTIONS

    source = Path(args.archive)
    records = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        source_eval = _evaluate(source, args.data, folder / "source.json")
        source_bytes = source.stat().st_size
        weights_bytes = _member_bytes(source, "weights.th")
        print(f"source: {source_bytes:,} B archive ({weights_bytes:,} B weights.th), perplexity {source_eval['perplexity']:.4f}")
        for option in EMBEDDING_OPTIONS:
            packed = folder / f"packed_{option}.tar.gz"
            sizes = export_archive(source, packed, embeddings=option)
            evaluation = _evaluate(packed, args.data, folder / f"{option}.json")
            archive_bytes, file_bytes = packed.stat().st_size, _member_bytes(packed, PACKED_FILE_NAME)
            record = {
                "embeddings": option,
                "perplexity": evaluation["perplexity"],
                "perplexity_change": evaluation["perplexity"] / source_eval["perplexity"] - 1,
                "accuracy": evaluation["accuracy"],
                "parts_stored_bytes": sizes.stored,
                "packed_file_bytes": file_bytes,
                "archive_bytes": archive_bytes,
                "archive_vs_source_archive": archive_bytes / source_bytes,
                "packed_file_vs_source_weights": file_bytes / weights_bytes,
                "evaluate_seconds": evaluation["seconds"],
            }
            records.append(record)
            print(
                f"--embeddings {option}: archive {archive_bytes:,} B (1/{source_bytes / archive_bytes:.2f} of the source "
                f"archive), packed file {file_bytes:,} B; perplexity {evaluation['perplexity']:.4f} "
                f"({100 * record['perplexity_change']:+.3f}%)"
            )
    result = {
        "label": args.label,
        "archive": str(source),
        "data": args.data,
        "source": {"archive_bytes": source_bytes, "weights_th_bytes": weights_bytes, **source_eval},
        "exports": records,
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version()},
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(output.read_text()) if output.is_file() else []
    output.write_text(json.dumps(previous + [result], indent=2) + "\n")
    print(f"appended to {output}")


if __name__ == "__main__":
    main()
