"""Print, for each archive, the packed size of its quantized parts against their fp32 size.

    python scripts/recipe_sizes.py NAME=ARCHIVE [NAME=ARCHIVE ...] [--json OUT.json]
"""
import argparse
import json
import logging

from allennlp.models.archival import load_archive

import bitmaps_allennlp  # noqa: F401  (registers the model types)
from bitmaps_allennlp.modules.quantized_size import quantized_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", metavar="NAME=ARCHIVE")
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    rows = {}
    print("| model | quantized modules | packed bytes | fp32 bytes | ratio |\n|---|---|---|---|---|")
    for spec in args.models:
        name, sep, archive = spec.partition("=")
        if not sep:
            parser.error(f"{spec!r}: expected NAME=ARCHIVE")
        size = quantized_size(load_archive(archive).model)
        rows[name] = {"modules": size.modules, "packed_bytes": size.packed_bytes, "fp32_bytes": size.fp32_bytes}
        print(f"| {name} | {size.modules} | {size.packed_bytes:,} | {size.fp32_bytes:,} | {size.ratio:.1f}x |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
