"""
Data-free conversion of a Hugging Face BERT encoder under a `BinarizationSpec`: the chosen linears
of every layer become `QuantizedLinear`s and the chosen embedding tables `QuantizedEmbedding`s,
initialised from the full-precision weights; every layer's self-attention becomes a
`QuantizedSelfAttention` (identical to BERT's when the attention knobs are full precision, and
able to record Q, K, V and scores for distillation).
"""
from typing import List, Optional

from torch import nn

from bitmaps_allennlp.modules.binarization_spec import (
    BERT_LAYER_COMPONENTS,
    EMBEDDING_COMPONENTS,
    BinarizationSpec,
)
from bitmaps_allennlp.modules.quantized_embedding import QuantizedEmbedding
from bitmaps_allennlp.modules.quantized_linear import QuantizedLinear
from bitmaps_allennlp.modules.quantized_self_attention import QuantizedSelfAttention


def install_attention(bert: nn.Module, spec: BinarizationSpec = BinarizationSpec()) -> List[QuantizedSelfAttention]:
    """Every layer's self-attention becomes a `QuantizedSelfAttention` (in place); returns them."""
    modules = []
    for layer in bert.encoder.layer:
        attention = layer.attention.self
        if not isinstance(attention, QuantizedSelfAttention):
            attention = QuantizedSelfAttention(
                attention, spec.attention, spec.attention_activations, spec.attention_probs, spec.attention_estimator
            )
            layer.attention.self = attention
        modules.append(attention)
    return modules


def binarize_bert_encoder(bert: nn.Module, spec: Optional[BinarizationSpec] = None) -> int:
    """Replace, in place, the spec's linears of every encoder layer and its embedding tables of
    `bert` (a `transformers.BertModel`); by default the six linears get binary weights. Returns
    how many modules were replaced."""
    spec = spec or BinarizationSpec.from_options()
    install_attention(bert, spec)
    replaced = 0
    for layer in bert.encoder.layer:
        for component in spec.linear_components:
            *parents, leaf = BERT_LAYER_COMPONENTS[component].split(".")
            owner = layer
            for name in parents:
                owner = getattr(owner, name)
            linear = getattr(owner, leaf)
            if isinstance(linear, QuantizedLinear):
                continue
            setattr(owner, leaf, QuantizedLinear.from_linear(linear, spec.components[component]))
            replaced += 1
    for component in EMBEDDING_COMPONENTS:
        embedding = getattr(bert.embeddings, component)
        if component in spec.components and not isinstance(embedding, QuantizedEmbedding):
            setattr(bert.embeddings, component, QuantizedEmbedding.from_embedding(embedding, spec.components[component]))
            replaced += 1
    return replaced
