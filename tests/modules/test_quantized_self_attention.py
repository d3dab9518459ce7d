import copy

import torch
from transformers import BertModel

from bitmaps_allennlp.modules.bert_binarization import binarize_bert_encoder, install_attention
from bitmaps_allennlp.modules.binarization_spec import BinarizationSpec
from tests.tiny_bert import tiny_bert_config


def _bert():
    torch.manual_seed(0)
    return BertModel(tiny_bert_config(50), add_pooling_layer=False).eval()


def _inputs():
    ids = torch.randint(5, 50, (2, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    return ids, mask


def test_full_precision_attention_is_exactly_berts_and_records_its_internals():
    bert = _bert()
    ours = copy.deepcopy(bert)
    install_attention(ours)
    assert set(ours.state_dict()) == set(bert.state_dict())
    ids, mask = _inputs()
    with torch.no_grad():
        expected = bert(input_ids=ids, attention_mask=mask, output_attentions=True)
        fused = ours(input_ids=ids, attention_mask=mask).last_hidden_state
        attention = ours.encoder.layer[1].attention.self
        attention.record = True
        recorded = ours(input_ids=ids, attention_mask=mask, output_attentions=True)
    assert torch.allclose(fused, expected.last_hidden_state, atol=1e-5)
    assert torch.allclose(recorded.last_hidden_state, expected.last_hidden_state, atol=1e-5)
    record = attention.last_record
    assert record.query.shape == (2, 2, 9, 16) and record.scores.shape == (2, 2, 9, 9)
    assert torch.allclose(record.probs, expected.attentions[1], atol=1e-6)
    # the scores are those before the padding mask; softmax over the real keys gives the probabilities
    real = record.scores[1, :, :, :6].softmax(-1)
    assert torch.allclose(record.probs[1, :, :, :6], real, atol=1e-6)


def test_bi_attention_weights_are_one_where_the_score_is_non_negative_on_real_keys():
    bert = _bert()
    binarize_bert_encoder(bert, BinarizationSpec.from_options(attention="bi_attention"))
    attention = bert.encoder.layer[0].attention.self
    attention.record = True
    ids, mask = _inputs()
    with torch.no_grad():
        bert(input_ids=ids, attention_mask=mask)
    record = attention.last_record
    keys = mask[:, None, None, :].float()
    assert torch.equal(record.probs, (record.scores >= 0).float() * keys)
    assert record.probs[1, :, :, 6:].sum() == 0


def test_quantized_matmul_inputs_get_gradient_through_the_estimator():
    bert = _bert().train()
    binarize_bert_encoder(bert, BinarizationSpec.from_options(attention_activations="sign", attention_probs="two_set"))
    ids, mask = _inputs()
    bert(input_ids=ids, attention_mask=mask).last_hidden_state.sum().backward()
    attention = bert.encoder.layer[0].attention.self
    assert attention.query.weight.grad.abs().sum() > 0
    assert attention.probs_quantizer.alpha.grad is not None


def test_bi_attention_on_1_bit_q_and_k_decides_zero_dot_products_exactly():
    """With sign-quantized Q and K, a score whose sign dot product is 0 is exactly 0, so
    Bi-Attention keeps it (1[score >= 0]) whatever the scales' rounding: summing the scaled terms
    directly can leave a residue of one ulp of either sign, which a packed model computing the
    scales with other kernels could not reproduce."""
    from bitmaps_allennlp.modules.quantized_self_attention import QuantizedSelfAttention

    bert = _bert()
    attention = QuantizedSelfAttention(
        bert.encoder.layer[0].attention.self, attention="bi_attention", attention_activations="sign"
    ).eval()
    head = attention.attention_head_size
    # signs of q and k agree on half the positions and differ on the other half: dot = 0
    signs = torch.ones(head)
    signs[: head // 2] = -1
    generator = torch.Generator().manual_seed(0)
    real_q = signs * (0.1 + torch.rand(4, 1, 3, head, generator=generator))
    real_k = torch.ones(head) * (0.3 + torch.rand(4, 1, 3, head, generator=generator))
    scores = attention._scores(real_q, real_k, None, None)
    assert torch.all(scores == 0)
