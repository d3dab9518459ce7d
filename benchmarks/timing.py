"""Timing helpers shared by the benchmarks: medians of repeated runs, never single runs."""
import platform
import statistics
import time
from typing import Callable, Dict


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


def cpu_name() -> str:
    """The CPU's model name, to go with every figure."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
