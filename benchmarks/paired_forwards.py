"""Forwards of packed models on two builds of the native runtime, alternating in one process
(`timing.paired_forwards`): the timing half of `kernel_table_ab.sh` and `runtime_ab.sh`, which
build the extensions and run this with the built `bitmaps_runtime` first on PYTHONPATH.

- `--table ISA`: one extension holding two kernel tables, ISA and ISA_base (kernel_table_ab.sh);
  each forward selects one.
- `--base-module SO`: a second extension, BASE's whole runtime, whose module loads as
  `_native_base` (runtime_ab.sh); one encoder is built on each module, both on the path
  BITMAPS_KERNELS selects (or this CPU's default).

Writes OUT: every pair's milliseconds, medians, the ratios base / new (median and quartiles), the
largest output difference, the CPU and the path.
"""
import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "scripts")]
from atomic_json import write_json  # noqa: E402
from bench_runtime import packed_model  # noqa: E402
from timing import cpu_name, describe_pair, paired_forwards  # noqa: E402


def _base_module(path: str):
    spec = importlib.util.spec_from_file_location("_native_base", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    side = parser.add_mutually_exclusive_group(required=True)
    side.add_argument("--table", help="kernel path whose ISA_base table is the base")
    side.add_argument("--base-module", help="the base build's extension (.so exporting PyInit__native_base)")
    parser.add_argument("--base", required=True, help="the base revision's name, for the record")
    parser.add_argument("--what", required=True)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cold-mb", type=float, default=0.0,
                        help="rewrite a buffer this large before each forward (outside its time): cold caches")
    parser.add_argument("--out", required=True)
    parser.add_argument("models", nargs="+")
    args = parser.parse_args()

    import bitmaps_runtime.encoder as encoder_module
    from bitmaps_runtime import native
    from bitmaps_runtime.encoder import PackedEncoder

    if args.table:
        path = args.table
    else:
        base_module = _base_module(args.base_module)
        path = native.backend()  # BITMAPS_KERNELS, or this CPU's default
        if path == "reference":
            sys.exit("paired_forwards.py: no native path is selected (BITMAPS_KERNELS=reference?)")
        base_module.set_isa(path)
    ids = np.random.default_rng(0).integers(1000, 30000, (args.batch, 128))
    mask = np.ones((args.batch, 128), np.int32)
    records = []
    for model in args.models:
        packed = packed_model(model)
        encoder = PackedEncoder(packed, source=model)
        if args.table:
            def forward(table, encoder=encoder):
                native.select(table)
                return encoder.hidden_states(ids, mask, threads=args.threads)

            new, base = (lambda: forward(path)), (lambda: forward(f"{path}_base"))
        else:
            encoder_module.native_module = lambda: base_module  # the next encoder is built on BASE's core
            try:
                base_encoder = PackedEncoder(packed, source=model)
            finally:
                encoder_module.native_module = native.native_module
            new = lambda encoder=encoder: encoder.hidden_states(ids, mask, threads=args.threads)  # noqa: E731
            base = lambda encoder=base_encoder: encoder.hidden_states(ids, mask, threads=args.threads)  # noqa: E731
        record = {"model": model, "batch": args.batch, "seq": 128, "threads": args.threads,
                  "cold_mb": args.cold_mb,
                  **paired_forwards(new, base, args.rounds, int(args.cold_mb * 2**20))}
        records.append(record)
        print(describe_pair(model, args.base, record), flush=True)
    write_json(args.out, {"what": args.what, "kernel_path": path, "base": args.base, "rounds": args.rounds,
                          "cpu": cpu_name(), "records": records})


if __name__ == "__main__":
    main()
