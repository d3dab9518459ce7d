import pytest
import torch

from allennlp.common.checks import ConfigurationError

from bitmaps_allennlp.modules.component_quantization import ComponentQuantization
from bitmaps_allennlp.modules.quantized_linear import QuantizedLinear


def _layer(weight, bias=None, weight_scale="mean_abs"):
    linear = torch.nn.Linear(weight.size(1), weight.size(0), bias=bias is not None)
    with torch.no_grad():
        linear.weight.copy_(weight)
        if bias is not None:
            linear.bias.copy_(bias)
    return QuantizedLinear.from_linear(linear, ComponentQuantization(weight_scale=weight_scale))


def test_forward_uses_mean_abs_scale_per_output_channel():
    weight = torch.tensor([[0.5, -0.25, 0.0, 0.25], [-1.0, -2.0, 3.0, 2.0]])
    layer = _layer(weight, bias=torch.tensor([0.1, -0.1]))
    # alpha = [0.25, 2.0]; sign rows = [+1 -1 +1 +1], [-1 -1 +1 +1]
    expected_weight = torch.tensor([[0.25, -0.25, 0.25, 0.25], [-2.0, -2.0, 2.0, 2.0]])
    assert torch.equal(layer.quantized_weight(), expected_weight)
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    # row 0: 0.25 * (1 - 2 + 3 + 4) + 0.1 = 1.6 ; row 1: 2 * (-1 - 2 + 3 + 4) - 0.1 = 7.9
    assert torch.allclose(layer(x), torch.tensor([[1.6, 7.9]]))


def test_weight_gradient_is_the_xnor_net_gradient():
    weight = torch.tensor([[0.5, -0.25, 0.0, 1.5]])
    layer = _layer(weight)
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    layer(x).sum().backward()
    # W~_j = alpha * s_j, alpha = mean|W| = 0.5625; dL/dW~_j = x_j.
    # dL/dW_j = sum_k x_k s_k * d|W_j|/dW_j / n  +  alpha * x_j * 1{|W_j| <= 1},
    # where d|W|/dW = torch.sign(W) is 0 at W = 0 (unlike the binarized s, which is +1 there)
    s = torch.tensor([1.0, -1.0, 1.0, 1.0])
    through_alpha = (x[0] * s).sum() * torch.tensor([1.0, -1.0, 0.0, 1.0]) / 4
    through_sign = 0.5625 * x[0] * torch.tensor([1.0, 1.0, 1.0, 0.0])
    assert torch.allclose(layer.weight.grad[0], through_alpha + through_sign)


def test_learned_scale_starts_at_mean_abs_and_gets_gradient():
    weight = torch.tensor([[0.5, -0.25], [2.0, -4.0]])
    layer = _layer(weight, weight_scale="learned")
    x = torch.tensor([[1.0, 3.0]])
    out = layer(x)
    # initialised on the first forward pass, from the weights the layer then holds
    scale = layer.weight_quantizer.scale
    assert torch.allclose(scale.detach(), torch.tensor([[0.375], [3.0]]))
    out.sum().backward()
    # dL/dalpha_i = sum_j sign(W_ij) x_j = [1 - 3, 1 - 3]
    assert torch.allclose(scale.grad, torch.tensor([[-2.0], [-2.0]]))
    # the scale is a leaf: the sign path alone reaches the weights
    assert torch.allclose(layer.weight.grad, torch.tensor([[0.375, 1.125], [0.0, 0.0]]))


def test_state_dict_keys_match_nn_linear():
    layer = QuantizedLinear(3, 2)
    assert set(layer.state_dict()) == set(torch.nn.Linear(3, 2).state_dict())


def test_unknown_weight_scale_names_the_key():
    with pytest.raises(ConfigurationError, match="weight_scale"):
        QuantizedLinear(3, 2, quantization=ComponentQuantization(weight_scale="median").check(""))
