"""
Data-free conversion of a Hugging Face BERT encoder: chosen `nn.Linear`s of every layer become
`BinaryLinear`s initialised from the full-precision weights.
"""
from typing import Dict, Iterable, List

from torch import nn

from allennlp.common.checks import ConfigurationError

from bitmaps_allennlp.modules.binary_linear import BinaryLinear
from bitmaps_allennlp.modules.weight_scale import check_weight_scale

# component name -> attribute path inside one `transformers` BertLayer
BERT_LAYER_COMPONENTS: Dict[str, str] = {
    "query": "attention.self.query",
    "key": "attention.self.key",
    "value": "attention.self.value",
    "attention_output": "attention.output.dense",
    "ffn_in": "intermediate.dense",
    "ffn_out": "output.dense",
}
ALL_COMPONENTS: List[str] = list(BERT_LAYER_COMPONENTS)


def check_components(components: Iterable[str], key: str = "binarized_components") -> List[str]:
    components = list(components)
    unknown = [c for c in components if c not in BERT_LAYER_COMPONENTS]
    if unknown:
        raise ConfigurationError(
            f"{key}: unknown component(s) {unknown}; expected a subset of {ALL_COMPONENTS}"
        )
    return components


def binarize_bert_encoder(
    bert: nn.Module, components: Iterable[str] = ALL_COMPONENTS, weight_scale: str = "mean_abs"
) -> int:
    """Replace, in place, the chosen linears of every encoder layer of `bert` (a
    `transformers.BertModel`). Returns how many linears were replaced."""
    components = check_components(components)
    check_weight_scale(weight_scale)
    replaced = 0
    for layer in bert.encoder.layer:
        for component in components:
            *parents, leaf = BERT_LAYER_COMPONENTS[component].split(".")
            owner = layer
            for name in parents:
                owner = getattr(owner, name)
            linear = getattr(owner, leaf)
            if isinstance(linear, BinaryLinear):
                continue
            setattr(owner, leaf, BinaryLinear.from_linear(linear, weight_scale=weight_scale))
            replaced += 1
    return replaced
