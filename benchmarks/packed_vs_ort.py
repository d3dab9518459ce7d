#!/usr/bin/env python
"""
Trained packed archives on the C++ runtime against the peer a user would pick instead, the
teacher's encoder in ONNX Runtime int8 (the fastest of its builds: `quantize_dynamic` per channel and
per tensor, each with and without ONNX Runtime's BERT fusions, `bench_runtime.ORT_INT8`; runs before
build e44bf7f timed the unfused per-channel build alone), and beside it in
CTranslate2 int8 (when installed: the `bench` extra), in ONE process: batch 1
x seq 128 (or each `--seq`) encoder forwards on 1 thread, every model timed once per round (median of --calls
forwards), the order rotating between rounds. Unlike bench_runtime.py's random weights, the
archives carry their trained quantizers (BiT's elastic attention, say), so every code path a
recipe takes is timed. scripts/pareto.py measures the same latencies beside perplexity and size;
this is the quick check after a runtime change. Writes --json (medians, spreads, ratios to ONNX
Runtime int8 and CTranslate2 int8, CPU, kernel path) and prints a table.

    python benchmarks/packed_vs_ort.py --teacher runs/recipes_full/teacher/model.tar.gz \
        --archive "BiT stage 2=runs/recipes_i8/bit_stage2/packed.tar.gz" --json benchmarks/results/packed_vs_ort.json
    python benchmarks/packed_vs_ort.py --teacher-shape minilm \
        --archive "BiT stage 2 quantizers=DIR/minilm_bit_stage2_w1a1.safetensors" --json ...   # profile_runtime.py --write DIR

`--peers-isa avx2` runs the archives on the `avx2` kernels and the whole process as on an
AVX2-only CPU (bench_runtime.py's option of the same name: CPUID masked where Linux can fault on
it, so ONNX Runtime and CTranslate2 pick their AVX2 kernels; without that, only CTranslate2 is
limited and ONNX Runtime keeps its AVX-512 VNNI kernels, as the record says).
"""
import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: no spinning OpenMP workers
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "scripts"))
from atomic_json import write_json  # noqa: E402
from bench_runtime import (  # noqa: E402
    ORT_INT8, SHAPES, _bert, fastest_ort_int8, load, ort_session, packed_model, peers_isa_record, use_kernel_path,
    write_peer_files)
from timing import PEER_ISA_SWITCHES, cpu_name, limit_peer_isa, one_cpu  # noqa: E402

PEER = "teacher, ONNX Runtime int8"
SECOND_PEER = "teacher, CTranslate2 int8"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    teacher = parser.add_mutually_exclusive_group(required=True)
    teacher.add_argument("--teacher", type=Path, help="the fp32 teacher archive (its encoder goes to ONNX Runtime int8)")
    teacher.add_argument("--teacher-shape", choices=list(SHAPES),
                         help="instead, a random-weight encoder of this shape (bench_runtime.py's): ONNX Runtime's "
                              "int8 time does not depend on the weights' values, so it stands for a teacher of that shape")
    parser.add_argument("--archive", action="append", required=True,
                        help="NAME=PACKED.tar.gz, or NAME=MODEL.safetensors (a packed model file: profile_runtime.py --write)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--seq", type=int, nargs="+", default=[128],
                        help="sequence lengths, each timed as its own model in the same rounds (a spoken command "
                             "is some 8-16 wordpieces, a passage 128 or more)")
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--peers-isa", choices=sorted(PEER_ISA_SWITCHES),
                        help="run the archives on this kernel path, as on a CPU with only this instruction set (CPUID masked "
                             "where Linux allows it)")
    args = parser.parse_args()
    if any(seq < 1 or seq > 512 for seq in args.seq):
        parser.error(f"--seq takes lengths from 1 to 512, got {args.seq}")
    limit = limit_peer_isa(args.peers_isa) if args.peers_isa else None  # before the peers' libraries load (may restart)
    if args.peers_isa:
        use_kernel_path(args.peers_isa)
    from allennlp.models.archival import load_archive
    import bitmaps_allennlp  # noqa: F401  registers the classes the teacher archive names
    from bitmaps_runtime.encoder import PackedEncoder
    from bitmaps_runtime.native import backend

    inputs = {seq: np.random.default_rng(0).integers(1000, 30000, (1, seq)) for seq in args.seq}
    masks = {seq: np.ones((1, seq), np.int32) for seq in args.seq}
    # one model per sequence length; names keep the plain NAME when one length is timed
    label = (lambda name, seq: name) if len(args.seq) == 1 else (lambda name, seq: f"{name} @ seq {seq}")
    runners, peers, second_peers, seq_of = {}, {}, {}, {}
    for entry in args.archive:
        name, _, path = entry.partition("=")
        if not path or not Path(path).is_file():
            parser.error(f"--archive expects NAME=PATH to a packed archive or model file, got {entry!r}")
        encoder = PackedEncoder(packed_model(path), source=path)
        for seq in args.seq:
            seq_of[label(name, seq)] = seq
            runners[label(name, seq)] = lambda encoder=encoder, seq=seq: encoder.hidden_states(inputs[seq], masks[seq], threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        bert = load_archive(str(args.teacher)).model.eval()._encoder.bert if args.teacher else _bert(args.teacher_shape)
        # every ONNX Runtime int8 build bench_runtime.py times; the fastest is the peer (fastest_ort_int8)
        write_peer_files(bert, Path(tmp), peers=ORT_INT8)
        for build in ORT_INT8:
            session = ort_session(Path(tmp) / f"{build}.onnx", 1)
            for seq in args.seq:
                mask64 = masks[seq].astype(np.int64)  # the exported graph takes int64 inputs
                name = label(f"{PEER} ({build})", seq)
                peers.setdefault(seq, {})[build] = name
                seq_of[name] = seq
                runners[name] = lambda session=session, seq=seq, mask64=mask64: session.run(
                    None, {"input_ids": inputs[seq], "attention_mask": mask64})
        try:  # CTranslate2 int8 as bench_runtime.py converts and runs it
            write_peer_files(bert, Path(tmp), peers=["ct2_int8"])
            ct2 = load("ct2_int8", "", Path(tmp), threads=1)
        except ImportError:
            print("CTranslate2 is not installed (the `bench` extra): timed against ONNX Runtime alone")
        else:
            for seq in args.seq:
                second_peers[seq] = label(SECOND_PEER, seq)
                seq_of[second_peers[seq]] = seq
                runners[second_peers[seq]] = lambda seq=seq: ct2(inputs[seq], masks[seq])
        samples = {name: [] for name in runners}
        names = list(runners)
        for run in runners.values():
            run()  # warm-up: buffers, weight layouts, ONNX Runtime's first-call work
        with one_cpu():  # CTranslate2's worker thread on the calling thread's vCPU (timing.one_cpu)
            for r in range(args.rounds):
                for name in names[r % len(names):] + names[:r % len(names)]:
                    times = []
                    for _ in range(args.calls):
                        start = time.perf_counter()
                        runners[name]()
                        times.append((time.perf_counter() - start) * 1e3)
                    samples[name].append(statistics.median(times))
    rows, fastest = {}, {}
    for seq, builds in peers.items():
        medians = {build: statistics.median(samples[name]) for build, name in builds.items()}
        fastest[seq] = medians[fastest_ort_int8(medians)]
    for name, ms in samples.items():
        rows[name] = {"seq": seq_of[name], "median_ms": statistics.median(ms), "spread_ms": [min(ms), max(ms)],
                      "rounds_ms": ms, "speedup_vs_ort_int8": fastest[seq_of[name]] / statistics.median(ms)}
        if second_peers:
            rows[name]["speedup_vs_ct2_int8"] = statistics.median(samples[second_peers[seq_of[name]]]) / statistics.median(ms)
    write_json(args.json, {"what": __doc__.strip().split("\n\n")[0], "cpu": cpu_name(), "kernel_path": backend(),
                           "batch": 1, "seq": args.seq[0] if len(args.seq) == 1 else args.seq, "threads": 1,
                           "on_one_cpu": True,
                           "rounds": args.rounds, "calls": args.calls,
                           "teacher": str(args.teacher) if args.teacher else f"random weights, {args.teacher_shape} shape",
                           "archives": dict(a.partition("=")[::2] for a in args.archive), "models": rows,
                           **({"peers_isa": peers_isa_record(args.peers_isa, limit)} if limit else {})})
    lengths = ", ".join(map(str, args.seq))
    print(f"{cpu_name()}, kernel path {backend()}, batch 1 x {lengths}, 1 thread, medians of {args.rounds} rounds:")
    for name, row in rows.items():
        second = f", {row['speedup_vs_ct2_int8']:.2f}x CTranslate2 int8" if "speedup_vs_ct2_int8" in row else ""
        print(f"  {name:56s} {row['median_ms']:7.2f} ms  (rounds {row['spread_ms'][0]:.2f}-{row['spread_ms'][1]:.2f}; "
              f"{row['speedup_vs_ort_int8']:.2f}x ONNX Runtime int8{second} at seq {row['seq']})")


if __name__ == "__main__":
    main()
