from bitmaps_allennlp.training.adamw import TransformersAdamW

__all__ = ["TransformersAdamW"]
