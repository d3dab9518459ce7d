import pytest
import torch
from transformers import BertModel

from allennlp.common.checks import ConfigurationError

from bitmaps_allennlp.modules.bert_binarization import binarize_bert_encoder
from bitmaps_allennlp.modules.binarization_spec import ALL_COMPONENTS, BinarizationSpec
from bitmaps_allennlp.modules.quantized_linear import QuantizedLinear
from tests.tiny_bert import tiny_bert_config


def _bert():
    torch.manual_seed(0)
    return BertModel(tiny_bert_config(50), add_pooling_layer=False).eval()


def test_all_six_linears_of_every_layer_are_replaced_with_the_same_latent_weights():
    bert = _bert()
    before = {k: v.clone() for k, v in bert.state_dict().items()}
    assert binarize_bert_encoder(bert) == 6 * bert.config.num_hidden_layers
    binary = [m for m in bert.modules() if isinstance(m, QuantizedLinear)]
    assert len(binary) == 12
    after = bert.state_dict()
    assert set(after) == set(before)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_chosen_components_only_and_outputs_change():
    bert = _bert()
    ids = torch.randint(5, 50, (2, 7))
    reference = bert(input_ids=ids).last_hidden_state
    binarize_bert_encoder(bert, BinarizationSpec.from_options(["ffn_in", "ffn_out"]))
    layer = bert.encoder.layer[0]
    assert isinstance(layer.intermediate.dense, QuantizedLinear)
    assert isinstance(layer.output.dense, QuantizedLinear)
    assert not isinstance(layer.attention.self.query, QuantizedLinear)
    assert not torch.allclose(bert(input_ids=ids).last_hidden_state, reference)


def test_unknown_component_is_named():
    with pytest.raises(ConfigurationError, match="binarized_components.*'ffn'"):
        BinarizationSpec.from_options(["query", "ffn"])


def test_component_list_is_complete():
    assert ALL_COMPONENTS == [
        "query", "key", "value", "attention_output", "ffn_in", "ffn_out",
        "word_embeddings", "position_embeddings", "mlm_head",
    ]
