"""Bitmaps: binarized BERT as an AllenNLP plugin. Importing this registers every class, and makes
tar extraction in this process refuse members that would land outside their folder."""
from bitmaps_allennlp.common import install_safe_extraction

install_safe_extraction()

from bitmaps_allennlp import (  # noqa: E402 (the filter is in place before anything loads)
    commands,
    data,
    dataset_readers,
    metrics,
    models,
    modules,
    predictors,
    token_embedders,
    training,
)

__version__ = "0.1.0"
