from bitmaps_allennlp.training.adamw import TransformersAdamW
from bitmaps_allennlp.training.freed_memory import KeepFreedMemory, keep_freed_memory

__all__ = ["KeepFreedMemory", "TransformersAdamW", "keep_freed_memory"]
