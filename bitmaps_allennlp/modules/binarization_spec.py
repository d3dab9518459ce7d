"""
Which parts of a BERT masked LM are binarized, and how: the per-component knobs of
`bitmaps_binary_bert`, checked once at configuration time so that a bad combination fails before
any weight is loaded, with the offending config key in the message.
"""
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional

from allennlp.common.checks import ConfigurationError
from bitmaps_runtime.formats import BERT_LAYER_LINEARS, attention_problem

from bitmaps_allennlp.modules.component_quantization import ComponentQuantization
from bitmaps_allennlp.modules.weight_quantizer import LINEAR_WEIGHT_MODES

# component name -> attribute path inside one `transformers` BertLayer (the packed format's table)
BERT_LAYER_COMPONENTS: Dict[str, str] = BERT_LAYER_LINEARS
LINEAR_COMPONENTS: List[str] = list(BERT_LAYER_COMPONENTS)
EMBEDDING_COMPONENTS: List[str] = ["word_embeddings", "position_embeddings"]
HEAD_COMPONENT = "mlm_head"
ALL_COMPONENTS: List[str] = LINEAR_COMPONENTS + EMBEDDING_COMPONENTS + [HEAD_COMPONENT]



def check_components(components: List[str], key: str = "binarized_components") -> List[str]:
    unknown = [c for c in components if c not in ALL_COMPONENTS]
    if unknown:
        raise ConfigurationError(f"{key}: unknown component(s) {unknown}; expected a subset of {ALL_COMPONENTS}")
    return list(components)


@dataclass(frozen=True)
class BinarizationSpec:
    """
    components : the binarized components and the quantization of each.
    attention : `softmax` or BiBERT's `bi_attention` (probabilities = 1[score >= 0], which
        maximises the information entropy of binary attention weights).
    attention_activations : quantizer of Q, K and V where they meet in the attention matmuls.
    attention_probs : quantizer of the softmax probabilities before they weight V.
    """

    components: Dict[str, ComponentQuantization] = field(default_factory=dict)
    attention: str = "softmax"
    attention_activations: str = "real"
    attention_probs: str = "real"
    attention_estimator: str = "clipped"

    @classmethod
    def from_options(
        cls,
        binarized_components: List[str] = LINEAR_COMPONENTS,
        defaults: ComponentQuantization = ComponentQuantization(),
        component_overrides: Optional[Dict[str, Dict[str, Any]]] = None,
        attention: str = "softmax",
        attention_activations: str = "real",
        attention_probs: str = "real",
    ) -> "BinarizationSpec":
        check_components(binarized_components)
        defaults.check("")
        component_overrides = component_overrides or {}
        check_components(list(component_overrides), "component_overrides")
        not_binarized = sorted(set(component_overrides) - set(binarized_components))
        if not_binarized:
            raise ConfigurationError(
                f"component_overrides: {not_binarized} are not in binarized_components; add them there"
            )
        if defaults.weights not in LINEAR_WEIGHT_MODES:
            raise ConfigurationError(
                f"weights: {defaults.weights!r} applies to embedding tables only (set it in component_overrides."
                f"word_embeddings / position_embeddings); linears take {list(LINEAR_WEIGHT_MODES)}"
            )
        components = {}
        for name in binarized_components:
            override = component_overrides.get(name, {})
            base = defaults
            if name in EMBEDDING_COMPONENTS:
                # an embedding is a lookup: there are no input activations to quantize
                base = replace(defaults, activations="real")
                if override.get("activations", "real") != "real":
                    raise ConfigurationError(
                        f"component_overrides.{name}.activations: embeddings have no input activations to quantize"
                    )
                if override.get("weights") == "int8":
                    # the defaults' scale and centering describe the linears' 1-bit weights
                    base = ComponentQuantization()
            elif override.get("weights", base.weights) not in LINEAR_WEIGHT_MODES:
                raise ConfigurationError(
                    f"component_overrides.{name}.weights: {override['weights']!r} applies to embedding tables only; "
                    f"{name} takes {list(LINEAR_WEIGHT_MODES)}"
                )
            components[name] = base.updated(override, f"component_overrides.{name}")
        problem = attention_problem(attention, attention_activations, attention_probs)
        if problem is not None:
            raise ConfigurationError(problem)
        return cls(components, attention, attention_activations, attention_probs, defaults.estimator)

    @property
    def linear_components(self) -> List[str]:
        return [c for c in LINEAR_COMPONENTS if c in self.components]

    @property
    def quantizes_attention(self) -> bool:
        return self.attention != "softmax" or self.attention_activations != "real" or self.attention_probs != "real"
