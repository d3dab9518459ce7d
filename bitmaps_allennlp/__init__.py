"""Bitmaps: binarized BERT as an AllenNLP plugin. Importing this registers every class."""
from bitmaps_allennlp import (
    commands,
    dataset_readers,
    metrics,
    models,
    modules,
    predictors,
    token_embedders,
)

__version__ = "0.1.0"
