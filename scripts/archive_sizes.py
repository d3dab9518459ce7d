#!/usr/bin/env python
"""
Whole-file sizes of packed archives: each trained archive exported with every `--embeddings`
option (`bitmaps-export`'s own code), with the stored bytes of each part (binarized linears,
embedding tables, masked-LM head, the rest) and the whole archive against the fp32 source
archive. Sizes depend on the recipe's quantization, not on how long it trained.

    python scripts/archive_sizes.py "XNOR W1A32=runs/xnor_w1/model.tar.gz" ... --json results/archive_sizes.json
"""
import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from atomic_json import write_json  # noqa: E402

import bitmaps_allennlp  # noqa: F401,E402  (registers the model types)
from bitmaps_allennlp.commands.packed_archive import export_archive  # noqa: E402
from bitmaps_allennlp.packed.export import EMBEDDING_OPTIONS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", metavar="NAME=ARCHIVE")
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    rows = []
    print("| recipe | `--embeddings` | binarized linears | embeddings | head | whole archive | vs fp32 source archive |")
    print("|---|---|---|---|---|---|---|")
    for spec in args.models:
        name, sep, archive = spec.partition("=")
        if not sep:
            parser.error(f"{spec!r}: expected NAME=ARCHIVE")
        source_bytes = os.path.getsize(archive)
        for option in EMBEDDING_OPTIONS:
            with tempfile.TemporaryDirectory() as tmp:
                output = Path(tmp) / "packed.tar.gz"
                sizes = export_archive(archive, output, embeddings=option)
                whole = output.stat().st_size
            parts = {part: stored for part, stored in sizes.stored.items()}
            linears = parts.get("binarized linear weights", 0)
            embeddings = parts.get("embeddings", 0)
            head = sum(v for k, v in parts.items() if "head" in k)
            rows.append(
                {"recipe": name, "embeddings": option, "parts": parts, "archive_bytes": whole, "source_archive_bytes": source_bytes}
            )
            print(
                f"| {name} | {option} | {linears:,} B | {embeddings:,} B | {head:,} B | {whole:,} B | 1/{source_bytes / whole:.2f} |",
                flush=True,
            )
    if args.json:
        write_json(args.json, {"what": __doc__.strip().splitlines()[0], "rows": rows})


if __name__ == "__main__":
    main()
