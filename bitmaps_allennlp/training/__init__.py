from bitmaps_allennlp.training.adamw import TransformersAdamW
from bitmaps_allennlp.training.freed_memory import KeepFreedMemory, keep_freed_memory
from bitmaps_allennlp.training.start_from import StartFrom

__all__ = ["KeepFreedMemory", "StartFrom", "TransformersAdamW", "keep_freed_memory"]
