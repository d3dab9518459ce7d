import torch

from bitmaps_allennlp.modules.component_quantization import ComponentQuantization
from bitmaps_allennlp.modules.quantized_embedding import QuantizedEmbedding


def test_rows_are_binarized_with_one_scale_each_and_state_matches_nn_embedding():
    table = torch.nn.Embedding(3, 2, padding_idx=0)
    with torch.no_grad():
        table.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, -3.0], [-0.5, -0.5]]))
    quantized = QuantizedEmbedding.from_embedding(table, ComponentQuantization())
    assert set(quantized.state_dict()) == set(table.state_dict())
    out = quantized(torch.tensor([[2, 1]]))
    assert out.tolist() == [[[-0.5, -0.5], [2.0, -2.0]]]
    assert quantized.quantized_weight()[1].tolist() == [2.0, -2.0]


def test_quantized_size_counts_packed_words_and_scales():
    from bitmaps_allennlp.modules.quantized_linear import QuantizedLinear
    from bitmaps_allennlp.modules.quantized_size import quantized_size

    model = torch.nn.Sequential(
        QuantizedLinear(100, 3),  # 3 rows x 2 words x 8 bytes + 3 scales x 4
        QuantizedLinear(100, 3, quantization=ComponentQuantization(weights="ternary", weight_scale="per_tensor")),  # 3 x 4 words x 8 + 4
        torch.nn.Linear(100, 3),
    )
    size = quantized_size(model)
    assert (size.modules, size.weights) == (2, 600)
    assert size.packed_bytes == (48 + 12) + (96 + 4)
    assert size.fp32_bytes == 2400


def test_a_quantized_once_block_quantizes_the_table_once_for_every_use():
    torch.manual_seed(0)
    table = QuantizedEmbedding(7, 4, ComponentQuantization(weights="int8"))
    ids = torch.tensor([[1, 3, 3]])
    calls = []
    table.weight_quantizer.register_forward_hook(lambda *_: calls.append(1))
    twice = table(ids).sum() + (table.quantized_weight() * 2).sum()
    twice.backward()
    grad_twice, table.weight.grad = table.weight.grad.clone(), None
    assert len(calls) == 2
    with table.quantized_once():
        first = table.quantized_weight()
        with table.quantized_once():  # a nested block shares the outer one's table
            assert table.quantized_weight() is first
        once = table(ids).sum() + (table.quantized_weight() * 2).sum()
    assert len(calls) == 3
    assert torch.equal(once, twice.detach())
    once.backward()
    assert torch.equal(table.weight.grad, grad_twice)  # the gradients of both uses, summed
    assert table.quantized_weight() is not table.quantized_weight()  # after the block: each call
