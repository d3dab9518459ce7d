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
