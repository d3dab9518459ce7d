"""
Keeping freed memory for reuse while training on a CPU (glibc's malloc).

A distillation step allocates and frees tensors of tens of MB: the (masks x vocabulary) logits of
both models and their gradient, the word table's quantized copy and its gradient. glibc serves
every allocation above 32 MB (the largest mmap threshold it allows) with a fresh `mmap` and
unmaps it again on `free`, so every step touches those pages anew: about 60,000 page faults a
step for MiniLM at 16 x 128, each a kernel entry that zeroes 4 KB. With `mmap` off and trimming
off, freed memory stays in the heap and the next step reuses it. The cost: the process keeps its
peak heap until it exits.
"""
import ctypes
import logging
import platform

from allennlp.training.callbacks.callback import TrainerCallback

logger = logging.getLogger(__name__)

# mallopt parameters, from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_NEVER_TRIM = 2**31 - 1  # the largest value mallopt takes: trim only above 2 GB of free heap top


def keep_freed_memory() -> bool:
    """From now on this process serves every allocation from its heap and keeps what is freed
    there for reuse. Returns whether it could (glibc only; elsewhere nothing changes)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL("libc.so.6")
    # Not M_ARENA_MAX=1 as well: it slowed two-worker distributed training (gloo's threads
    # contend for one arena), and a worker aborted at exit in 2 of 4 runs of test_distributed.py.
    settings = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _NEVER_TRIM))
    return all(libc.mallopt(parameter, value) == 1 for parameter, value in settings)  # 1: success


@TrainerCallback.register("bitmaps_keep_freed_memory")
class KeepFreedMemory(TrainerCallback):
    """
    Calls `keep_freed_memory` when training starts: a CPU run's steps stop paying page faults
    for their largest tensors (README, "Training throughput"). On a GPU run it changes only the
    host's small allocations.

    # Parameters

    serialization_dir : `str`
        Given by the trainer.
    """

    def on_start(self, trainer, is_primary: bool = True, **kwargs) -> None:
        if keep_freed_memory():
            logger.info("malloc: mmap and trimming off, freed memory is reused (bitmaps_keep_freed_memory)")
        else:
            logger.info("bitmaps_keep_freed_memory: not glibc's malloc, left as it is")
