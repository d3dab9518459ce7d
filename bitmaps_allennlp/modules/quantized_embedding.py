import contextlib
from typing import Iterator, Optional

import torch
from torch import nn

from bitmaps_allennlp.modules.component_quantization import ComponentQuantization
from bitmaps_allennlp.modules.weight_quantizer import WeightQuantizer


class QuantizedEmbedding(nn.Embedding):
    """
    An embedding table whose rows are quantized like a linear's output channels (one scale per
    row for `mean_abs`). The latent table keeps `nn.Embedding`'s parameter name, so checkpoints
    load unchanged. When it is the word embedding table, the MLM decoder tied to it uses the
    quantized table too (`quantized_weight`).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, quantization: ComponentQuantization, **kwargs) -> None:
        super().__init__(num_embeddings, embedding_dim, **kwargs)
        self.quantization = quantization
        self.weight_quantizer = WeightQuantizer.for_component(num_embeddings, quantization)
        self._once: Optional[list] = None  # the table quantized in a `quantized_once` block

    @classmethod
    def from_embedding(cls, embedding: nn.Embedding, quantization: ComponentQuantization) -> "QuantizedEmbedding":
        quantized = cls(
            embedding.num_embeddings,
            embedding.embedding_dim,
            quantization,
            padding_idx=embedding.padding_idx,
        )
        quantized.to(device=embedding.weight.device, dtype=embedding.weight.dtype)
        with torch.no_grad():
            quantized.weight.copy_(embedding.weight)
        return quantized

    @contextlib.contextmanager
    def quantized_once(self) -> Iterator[None]:
        """Within this block `quantized_weight()` quantizes the table once and hands every use
        (the embedding lookup, the tied MLM decoder) that same tensor. For one forward pass, in
        which the latent table cannot change: the word table is 30522 x 384 for MiniLM, and
        quantizing it twice a step cost about 2% of a distillation step."""
        if self._once is not None:  # nested: the outer block decides
            yield
            return
        self._once = []
        try:
            yield
        finally:
            self._once = None

    def quantized_weight(self) -> torch.Tensor:
        if self._once is None:
            return self.weight_quantizer(self.weight)
        if not self._once:
            self._once.append(self.weight_quantizer(self.weight))
        return self._once[0]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return nn.functional.embedding(ids, self.quantized_weight(), self.padding_idx)
