import platform
import subprocess
import sys

import pytest

from allennlp.common import Params
from allennlp.training.callbacks import TrainerCallback

from bitmaps_allennlp.training import freed_memory

# each `x * 2` allocates 48 MB, above glibc's largest mmap threshold: a fresh mapping every time
SCRIPT = """
import resource, sys, torch
from bitmaps_allennlp.training.freed_memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
torch.set_num_threads(1)
x = torch.ones(12_000_000)
for _ in range(5):  # the first uses grow the heap until the freed blocks fit the next requests
    (x * 2).sum()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    (x * 2).sum()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode: str) -> int:
    result = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    return int(result.stdout.split()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc malloc setting")
def test_freed_large_tensors_are_reused_without_page_faults():
    # 5 x 48 MB of fresh pages is about 59,000 faults; reused memory faults no more
    assert _page_faults("default") > 30_000
    assert _page_faults("keep") < 1_000


def test_the_callback_keeps_freed_memory_when_training_starts(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(freed_memory, "keep_freed_memory", lambda: calls.append(1) or True)
    callback = TrainerCallback.from_params(Params({"type": "bitmaps_keep_freed_memory"}), serialization_dir=str(tmp_path))
    callback.on_start(trainer=None)
    assert calls == [1]
