"""Timing helpers shared by the benchmarks: medians of repeated runs, never single runs."""
import contextlib
import os
import platform
import statistics
import time
from typing import Callable, Dict, Iterator


def median_seconds(fn: Callable[[], object], repeats: int = 15, min_sample_seconds: float = 0.02) -> Dict[str, float]:
    """Runs `fn` a few times to warm up, then takes `repeats` samples; each sample times enough
    back-to-back calls to last `min_sample_seconds`, so microsecond kernels are measured above
    the timer's resolution. Returns the median and the spread of seconds per call."""
    for _ in range(3):
        fn()
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        if time.perf_counter() - start >= min_sample_seconds or calls >= 1 << 16:
            break
        calls *= 2
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls)
    return {
        "median_s": statistics.median(samples),
        "min_s": min(samples),
        "max_s": max(samples),
        "calls_per_sample": calls,
        "samples": repeats,
    }


def _threads_affinity() -> Dict[int, set]:
    masks = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            masks[int(tid)] = os.sched_getaffinity(int(tid))
        except OSError:  # a thread that has exited since the listing
            pass
    return masks


@contextlib.contextmanager
def one_cpu(enabled: bool = True) -> Iterator[None]:
    """Every thread of this process, and those it starts meanwhile, on one CPU for the block; then
    each thread back on the CPUs it had (a thread started inside, on the calling thread's). For
    1-thread comparisons on a VM whose vCPUs run at different speeds at times
    (benchmarks/vcpu_sharing.py): a peer that runs its forward on a worker thread of its own
    (CTranslate2 does) could otherwise land on another vCPU than a peer running on the calling
    thread, and the two would be timed on different hardware (on this project's Ice Lake VM the
    same CTranslate2 and ONNX Runtime models swapped places, 0.77x to 1.36x, from process to
    process, and read 0.91-1.00x pinned). Linux only; elsewhere a no-op."""
    if not enabled or not hasattr(os, "sched_setaffinity") or not os.path.isdir("/proc/self/task"):
        yield
        return
    before = _threads_affinity()
    caller = os.sched_getaffinity(0)
    pinned = {min(caller)}
    for tid in before:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(tid, pinned)
    try:
        yield
    finally:
        for tid in _threads_affinity():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, before.get(tid, caller))


def cpu_name() -> str:
    """The CPU's model name, to go with every figure, with its family and model numbers: VMs show
    names like "AMD EPYC" for every generation (family 23 is Zen 1/2, 25 is Zen 3/4), whose vector
    units differ enough to change the ratios between kernels."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family", "model") and key not in fields:
                    fields[key] = value.strip()
                if not line.strip() and fields:
                    break
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def paired_forwards(new: Callable[[], "object"], base: Callable[[], "object"], rounds: int,
                    cold_bytes: int = 0) -> Dict[str, object]:
    """Times two ways of running the same forward against each other in one process: each round
    runs both, in alternating order, so that both see the same host state (on a shared VM the
    same build moves by 20-50% between minutes, and only each pair's ratio resolves a change of a
    few percent). `new` and `base` return the forward's output (numpy arrays); the first call of
    each is a warm-up whose outputs are compared. `cold_bytes` > 0: before each timed forward (and
    outside its time), a buffer that large is rewritten, evicting the caches as the work between
    two sporadic calls would (bench_runtime.py's rounds, where every peer runs between two of
    ours). Returns every pair's milliseconds, the medians, the median and quartiles of the ratios
    base / new, and the largest output difference."""
    import numpy as np

    outputs = {"new": new(), "base": base()}
    runners = {"new": new, "base": base}
    times: Dict[str, list] = {"new": [], "base": []}
    sweep = np.zeros(cold_bytes // 8, dtype=np.float64) if cold_bytes > 0 else None
    for r in range(rounds):
        for side in ("new", "base") if r % 2 == 0 else ("base", "new"):
            if sweep is not None:
                sweep += 1.0
            start = time.perf_counter()
            runners[side]()
            times[side].append((time.perf_counter() - start) * 1e3)
    ratios = [b / a for a, b in zip(times["new"], times["base"])]
    return {
        "ms": times,
        "median_ms": {side: statistics.median(values) for side, values in times.items()},
        "ratio_base_over_new": {"median": statistics.median(ratios),
                                "quartiles": [float(q) for q in np.percentile(ratios, [25, 75])]},
        "max_abs_output_difference": float(np.abs(np.asarray(outputs["new"]) - np.asarray(outputs["base"])).max()),
    }


def describe_pair(model: str, base: str, record: Dict[str, object]) -> str:
    """One line for a `paired_forwards` record."""
    ms, ratio = record["median_ms"], record["ratio_base_over_new"]
    return (f"{model}: new {ms['new']:.3f} ms, {base} {ms['base']:.3f} ms; base/new per pair: median "
            f"{ratio['median']:.3f}x (quartiles {ratio['quartiles'][0]:.3f}-{ratio['quartiles'][1]:.3f}); "
            f"max |output difference| {record['max_abs_output_difference']:.3g}")


# How an AVX-512 machine times Bitmaps' `avx2` path against peers on the same instruction set, as an
# AVX2-only CPU would pair them. Two layers, both set by limit_peer_isa:
# - CPUID masking (benchmarks/cpuid_mask.c, where Linux can fault on CPUID: /proc/cpuinfo's
#   `cpuid_fault`): the process and its children see a CPU without AVX-512, VNNI or GFNI, so every
#   library that picks its kernels from CPUID picks its AVX2 ones. This is the only way to reach
#   ONNX Runtime's MLAS and torch's fbgemm, which have no switch (on Zen 4, ONNX Runtime's int8
#   GEMM then runs `vpmaddubsw` on ymm registers instead of `vpdpbusd` on zmm). Bitmaps' own
#   runtime sees the same CPUID and defaults to `avx2`.
# - The libraries' own switches, which also hold where CPUID cannot be masked: oneDNN (CTranslate2's
#   int8 and float GEMMs on AMD, torch's oneDNN operators), Intel MKL (CTranslate2's GEMMs on
#   Intel, torch's float GEMM), CTranslate2's own kernels and torch's vectorized ATen kernels.
PEER_ISA_SWITCHES = {
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "CT2_FORCE_CPU_ISA": "AVX2",
             "ATEN_CPU_CAPABILITY": "avx2"},
}
# the peers that only CPUID masking limits
PEERS_NOT_LIMITED = [
    "onnxruntime (MLAS chooses its kernels from CPUID; no switch)",
    "torch int8 dynamic quantization (fbgemm chooses its kernels from CPUID; no switch)",
]
CPUID_MASK_VARIABLE = "BITMAPS_CPUID_MASK"  # read by cpuid_mask.c's constructor


def cpuid_masking_possible() -> bool:
    """Whether this machine can fault on CPUID (Linux on x86-64 with `cpuid_fault`)."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and "cpuid_fault" in line.split() for line in f)
    except OSError:
        return False


def cpuid_mask_library() -> str:
    """benchmarks/cpuid_mask.c built (once per source version) into this user's cache folder
    ($XDG_CACHE_HOME or ~/.cache, then bitmaps/; not a shared temporary folder, since the library
    is preloaded into every process of the run); its path. Needs a C compiler ($CC, else `cc` or
    `gcc`)."""
    import hashlib
    import shutil
    import subprocess

    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cpuid_mask.c")
    with open(source, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "bitmaps")
    os.makedirs(cache, mode=0o700, exist_ok=True)
    library = os.path.join(cache, f"cpuid_mask_{digest}.so")
    if not os.path.exists(library):
        partial = f"{library}.{os.getpid()}.partial"
        compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if not compiler:
            raise RuntimeError("masking CPUID needs a C compiler to build benchmarks/cpuid_mask.c: set CC or install gcc")
        subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", partial, source], check=True)
        os.replace(partial, library)  # whole or absent, for a concurrent process
    return library


def cpuid_mask_state() -> Dict[str, object]:
    """What this process's CPUID says now, through the mask if cpuid_mask.c is loaded: leaf 7's
    EBX, ECX and EDX, and how many CPUID instructions the mask has answered."""
    import ctypes

    library = ctypes.CDLL(cpuid_mask_library())  # the preloaded copy where there is one
    leaf7 = (ctypes.c_uint32 * 3)()
    library.bitmaps_cpuid_leaf7(leaf7)
    library.bitmaps_cpuid_trapped.restype = ctypes.c_long
    return {"leaf7_ebx_ecx_edx": [hex(v) for v in leaf7], "answered": library.bitmaps_cpuid_trapped(),
            "avx512f": bool(leaf7[0] & (1 << 16)), "avx512_vnni": bool(leaf7[1] & (1 << 11))}


def limit_peer_isa(isa: str) -> Dict[str, object]:
    """Makes the peers run the kernels they would pick on an `isa`-only CPU (the header above):
    sets PEER_ISA_SWITCHES[isa] in the environment and, where CPUID can be masked, restarts this
    process (the same interpreter and arguments, `sys.orig_argv`) with cpuid_mask.c preloaded, so
    that the mask holds before any library loads; the restarted process calls this again and
    continues. Both reach the child processes too. Must run before torch, CTranslate2 or ONNX
    Runtime is imported, and before anything worth keeping is done (it is done again). Returns the
    switches, whether CPUID is masked, and what CPUID reports now."""
    import sys

    if isa not in PEER_ISA_SWITCHES:
        raise ValueError(f"peer ISA limit {isa!r}: expected one of {sorted(PEER_ISA_SWITCHES)}")
    loaded = sorted({"torch", "ctranslate2", "onnxruntime"} & set(sys.modules))
    if loaded:
        raise RuntimeError(f"limit_peer_isa({isa!r}) must run before {', '.join(loaded)} is imported: "
                           "the libraries read their instruction-set switches when they load")
    os.environ.update(PEER_ISA_SWITCHES[isa])
    masked = os.environ.get(CPUID_MASK_VARIABLE) == isa
    if not masked and cpuid_masking_possible():
        library = cpuid_mask_library()
        os.environ[CPUID_MASK_VARIABLE] = isa
        os.environ["LD_PRELOAD"] = " ".join(filter(None, [library, os.environ.get("LD_PRELOAD")]))
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable] + sys.orig_argv[1:])
    state = cpuid_mask_state() if masked else None
    if masked and (state["avx512f"] or not state["answered"]):
        raise RuntimeError(f"{CPUID_MASK_VARIABLE}={isa} is set but CPUID is not masked in this process: {state}")
    return {"environment": dict(PEER_ISA_SWITCHES[isa]), "cpuid_masked": masked, "cpuid": state,
            "not_limited": [] if masked else PEERS_NOT_LIMITED}
