import pytest
import torch

from allennlp.common.checks import ConfigurationError

from bitmaps_allennlp.modules.weight_quantizer import WeightQuantizer


def test_centered_binary_weights_take_the_sign_of_the_row_minus_its_mean():
    weight = torch.tensor([[1.0, 2.0, 3.0, 6.0]])  # mean 3 -> centred [-2, -1, 0, 3]
    quantizer = WeightQuantizer(1, center_weights=True)
    # alpha = mean |centred| = 1.5; sign(0) = +1
    assert quantizer(weight).tolist() == [[-1.5, -1.5, 1.5, 1.5]]
    signs, scale = quantizer.binary_parts(weight)
    assert signs.tolist() == [[-2.0, -1.0, 0.0, 3.0]] and scale.tolist() == [1.5]


def test_per_tensor_scale_is_one_mean_abs_for_the_matrix():
    weight = torch.tensor([[0.5, -0.5], [2.0, -3.0]])
    quantizer = WeightQuantizer(2, weight_scale="per_tensor")
    assert quantizer(weight).tolist() == [[1.5, -1.5], [1.5, -1.5]]
    assert quantizer.binary_parts(weight)[1].tolist() == [1.5, 1.5]


def test_ternary_absmean_forward_and_identity_gradient():
    weight = torch.tensor([[0.1, -0.9, 0.5, 2.5]], requires_grad=True)
    quantizer = WeightQuantizer(1, weights="ternary", weight_scale="per_tensor")
    # gamma = mean|W| = 1.0; round(W / gamma) clipped to [-1, 1] = [0, -1, 0 (round half to even), 1]
    out = quantizer(weight)
    assert out.tolist() == [[0.0, -1.0, 0.0, 1.0]]
    out.backward(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    assert weight.grad.tolist() == [[1.0, 2.0, 3.0, 4.0]]
    with pytest.raises(ConfigurationError, match="1-bit packed form"):
        quantizer.binary_parts(weight)


def test_learned_scale_initialises_once_from_the_weights_it_first_sees():
    quantizer = WeightQuantizer(2, weight_scale="learned")
    quantizer(torch.tensor([[1.0, -3.0], [0.5, 0.5]]))
    assert quantizer.scale.detach().flatten().tolist() == [2.0, 0.5]
    quantizer(torch.tensor([[10.0, 10.0], [10.0, 10.0]]))
    assert quantizer.scale.detach().flatten().tolist() == [2.0, 0.5]
    restored = WeightQuantizer(2, weight_scale="learned")
    restored.load_state_dict(quantizer.state_dict())
    assert bool(restored.scale_initialized)


def test_bad_knobs_name_their_key():
    with pytest.raises(ConfigurationError, match="weights must be one of"):
        WeightQuantizer(2, weights="quaternary")
    with pytest.raises(ConfigurationError, match="center_weights"):
        WeightQuantizer(2, weights="ternary", center_weights=True)
    with pytest.raises(ConfigurationError, match="center_weights applies to binary weights, not int8"):
        WeightQuantizer(2, weights="int8", center_weights=True)
    with pytest.raises(ConfigurationError, match="weight_scale 'per_tensor' does not apply"):
        WeightQuantizer(2, weights="int8", weight_scale="per_tensor")


def test_int8_tables_are_absmax_rows_with_the_identity_gradient():
    # row 0: step = 2.54 / 127 = 0.02: 1.27 -> 64 levels, -0.01 -> -0, 0.3 -> 15
    weight = torch.tensor([[2.54, 1.27, -0.01, 0.3], [0.0, 0.0, 0.0, 0.0]], requires_grad=True)
    out = WeightQuantizer(2, weights="int8")(weight)
    step = torch.full((1,), 1.0) / (torch.full((1,), 127.0) / torch.full((1,), 2.54))
    assert out[0].tolist() == (torch.tensor([127.0, 64.0, -0.0, 15.0]) * step).tolist()
    assert out[1].tolist() == [0.0, 0.0, 0.0, 0.0]  # an all-zero row stays zero
    out.backward(torch.ones_like(weight) * 3)
    assert weight.grad.tolist() == [[3.0] * 4] * 2
