"""Whether this machine's vCPUs compute side by side at full speed, or share a physical core (SMT
siblings on the host, or a busy neighbour): the limit of any 2-thread figure measured here.

One process per vCPU, each pinned to its vCPU, runs a single-threaded float32 matrix product
(numpy's BLAS, 384 x 384, compute-bound) for a fixed number of calls: first each vCPU alone, then
all of them at once, in alternating rounds. Prints and saves each vCPU's GFLOP/s alone and
together, and their ratio (1.0: no sharing; 0.5: two vCPUs on one core's ports). Run it just
before and after a thread-scaling benchmark: on a shared host it changes from minute to minute.

    python benchmarks/vcpu_sharing.py --out benchmarks/results/vcpu_sharing.json
"""
import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from atomic_json import write_json  # noqa: E402
from timing import cpu_name  # noqa: E402

SIZE = 384


def _worker(cpu: int, calls: int, start, results) -> None:
    # one BLAS thread: the product must stay on its pinned vCPU
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    os.sched_setaffinity(0, {cpu})
    import numpy as np

    a = np.random.default_rng(cpu).standard_normal((SIZE, SIZE), dtype=np.float32)
    b = a.T.copy()
    a @ b  # warm-up
    start.wait()
    began = time.perf_counter()
    for _ in range(calls):
        a @ b
    results[cpu] = 2 * SIZE**3 * calls / (time.perf_counter() - began) / 1e9


def _run(cpus, calls: int) -> dict:
    """GFLOP/s of each vCPU in `cpus`, all started at once."""
    context = mp.get_context("spawn")
    with context.Manager() as manager:
        results = manager.dict()
        start = context.Barrier(len(cpus))
        workers = [context.Process(target=_worker, args=(cpu, calls, start, results)) for cpu in cpus]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
            if worker.exitcode != 0:
                raise RuntimeError(f"vcpu_sharing: the worker on vCPU {cpus} exited with {worker.exitcode}")
        return dict(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results/vcpu_sharing.json")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=600, help="products per measurement (about 0.7 s each)")
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        sys.exit(f"vcpu_sharing: this process may run on {len(cpus)} vCPU only; nothing to compare")
    alone = {cpu: [] for cpu in cpus}
    together = {cpu: [] for cpu in cpus}
    for round_index in range(args.rounds):
        for cpu in cpus:
            alone[cpu].append(_run([cpu], args.calls)[cpu])
        for cpu, value in _run(cpus, args.calls).items():
            together[cpu].append(value)
        print(f"round {round_index + 1}: alone " + ", ".join(f"{alone[c][-1]:.1f}" for c in cpus) + " GFLOP/s; together "
              + ", ".join(f"{together[c][-1]:.1f}" for c in cpus), flush=True)
    ratios = [t / a for cpu in cpus for a, t in zip(alone[cpu], together[cpu])]
    result = {
        "what": __doc__.strip().splitlines()[0],
        "cpu": cpu_name(),
        "vcpus": cpus,
        "size": SIZE,
        "calls": args.calls,
        "gflops_alone": {str(c): v for c, v in alone.items()},
        "gflops_together": {str(c): v for c, v in together.items()},
        "ratio_together_over_alone": {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)},
    }
    write_json(args.out, result)
    r = result["ratio_together_over_alone"]
    print(f"each vCPU's speed with all {len(cpus)} busy / alone: median {r['median']:.2f} (min {r['min']:.2f}, max "
          f"{r['max']:.2f}); {result['cpu']}")


if __name__ == "__main__":
    main()
