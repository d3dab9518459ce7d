import pytest

from allennlp.common.checks import ConfigurationError

from bitmaps_allennlp.modules.binarization_spec import BinarizationSpec
from bitmaps_allennlp.modules.component_quantization import ComponentQuantization


def test_overrides_apply_to_their_component_and_embeddings_take_no_activations():
    spec = BinarizationSpec.from_options(
        ["query", "ffn_out", "word_embeddings"],
        ComponentQuantization(activations="elastic"),
        {"ffn_out": {"activations": "two_set", "estimator": "approx_sign"}},
    )
    assert spec.components["query"].activations == "elastic"
    assert spec.components["ffn_out"] == ComponentQuantization(activations="two_set", estimator="approx_sign")
    assert spec.components["word_embeddings"].activations == "real"
    assert spec.linear_components == ["query", "ffn_out"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(binarized_components=["query", "ffn"]), r"binarized_components: unknown component\(s\) \['ffn'\]"),
        (dict(component_overrides={"keys": {}}), r"component_overrides: unknown component\(s\) \['keys'\]"),
        (dict(binarized_components=["query"], component_overrides={"value": {}}), "component_overrides: \\['value'\\] are not in binarized_components"),
        (dict(component_overrides={"ffn_out": {"weights": "ternary", "activations": "two_set"}}), "component_overrides.ffn_out.activations: ternary weights take"),
        (dict(defaults=ComponentQuantization(weights="ternary", activations="sign")), "^activations: ternary weights take"),
        (dict(component_overrides={"query": {"bits": 2}}), r"component_overrides.query: unknown knob\(s\) \['bits'\]"),
        (dict(component_overrides={"query": {"weight_scale": "max"}}), "component_overrides.query.weight_scale must be one of"),
        (dict(binarized_components=["word_embeddings"], component_overrides={"word_embeddings": {"activations": "int8"}}), "component_overrides.word_embeddings.activations: embeddings"),
        (dict(defaults=ComponentQuantization(weights="int8")), "^weights: 'int8' applies to embedding tables only"),
        (dict(component_overrides={"ffn_in": {"weights": "int8"}}), "^component_overrides.ffn_in.weights: 'int8' applies to embedding tables only"),
        (dict(binarized_components=["query", "mlm_head"], component_overrides={"mlm_head": {"weights": "int8"}}), "component_overrides.mlm_head.weights"),
        (
            dict(binarized_components=["word_embeddings"], component_overrides={"word_embeddings": {"weights": "int8", "center_weights": True}}),
            "component_overrides.word_embeddings.center_weights: centering applies to binary weights, not int8",
        ),
        (dict(attention="linear"), "attention must be one of"),
        (dict(attention="bi_attention", attention_probs="two_set"), "attention_probs: bi_attention already"),
        (dict(attention_activations="two_set"), "attention_activations: Q, K and V are signed"),
        (dict(attention_probs="sign"), "attention_probs must be one of"),
    ],
)
def test_bad_combinations_fail_naming_the_key(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        BinarizationSpec.from_options(**kwargs)


def test_int8_tables_do_not_inherit_the_linears_one_bit_knobs():
    # BiT stage 2's defaults centre the weights and scale per tensor: an int8 word table takes
    # neither (absmax per row), and the position table left binary still inherits them
    spec = BinarizationSpec.from_options(
        ["query", "word_embeddings", "position_embeddings"],
        ComponentQuantization(center_weights=True, weight_scale="per_tensor", activations="elastic"),
        {"word_embeddings": {"weights": "int8"}},
    )
    assert spec.components["word_embeddings"] == ComponentQuantization(weights="int8")
    assert spec.components["position_embeddings"] == ComponentQuantization(center_weights=True, weight_scale="per_tensor")


def test_the_embedder_checks_knobs_before_loading_anything(tmp_path):
    from bitmaps_allennlp.token_embedders.binary_bert_embedder import BinaryBertEmbedder

    # the checkpoint does not exist: the knob error must come first
    with pytest.raises(ConfigurationError, match="component_overrides.ffn_out.activations"):
        BinaryBertEmbedder(
            model_name=str(tmp_path / "missing"),
            weights="ternary",
            activations="int8",
            component_overrides={"ffn_out": {"activations": "two_set"}},
        )
