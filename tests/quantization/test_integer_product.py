import pytest
import torch

from bitmaps_allennlp.kernels import reference
from bitmaps_allennlp.modules.component_quantization import ComponentQuantization
from bitmaps_allennlp.modules.quantized_linear import QuantizedLinear
from bitmaps_allennlp.quantization import integer_product as module
from bitmaps_allennlp.quantization.bit_packing import pack_signs
from bitmaps_allennlp.quantization.integer_product import integer_dots, integer_product


def _levels(*shape, low=-127, high=127, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(low, high + 1, shape, generator=generator).float()


@pytest.mark.parametrize("shape", [(1, 7, 5), (3, 33, 37), (2, 16, 130, 96)])
def test_int8_products_give_the_float32_sums_bit_for_bit(shape, monkeypatch):
    *rows, k, n = shape
    x = _levels(*rows, k)
    w = _levels(n, k, low=-1, high=1, seed=1)
    monkeypatch.setattr(module, "_int8_products_available", lambda levels: True)  # whatever this CPU has
    on_int8 = integer_dots(x, w)
    monkeypatch.setattr(module, "_int8_products_available", lambda levels: False)
    on_float32 = integer_dots(x, w)
    assert on_int8.dtype == torch.float32 and on_int8.shape == (*rows, n)
    assert torch.equal(on_int8, on_float32)
    assert torch.equal(on_int8.double(), x.double() @ w.double().t())


def test_extreme_levels_and_transposed_inputs_stay_exact():
    x = torch.full((4, 1024), -127.0)
    w = torch.cat([torch.full((1, 1024), -1.0), torch.full((1, 1024), 1.0)])
    assert integer_dots(x, w)[0].tolist() == [127 * 1024, -127 * 1024]
    x = _levels(40, 24).t()  # not contiguous
    w = _levels(9, 40, low=-1, high=1)
    assert torch.equal(integer_dots(x, w), x @ w.t())


def test_too_many_terms_for_exact_float32_sums_is_refused():
    with pytest.raises(ValueError, match="132105 terms"):
        integer_dots(torch.zeros(1, 132105), torch.zeros(1, 132105))


def test_gradients_are_those_of_the_linear_of_the_values():
    step = torch.rand(5, 3, 1) + 0.1
    scale = torch.rand(6) + 0.5
    x_levels, w_levels = _levels(5, 3, 20), _levels(6, 20, low=-1, high=1, seed=2)
    x_value = (x_levels * step).requires_grad_()
    w_value = (w_levels * scale[:, None]).requires_grad_()
    out = integer_product(x_value, w_value, x_levels, w_levels, step, scale)
    assert torch.equal(out, integer_dots(x_levels, w_levels) * step * scale)
    assert torch.allclose(out, torch.nn.functional.linear(x_value, w_value), rtol=1e-5, atol=1e-4)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, (x_value, w_value), grad)
    expected = torch.autograd.grad(torch.nn.functional.linear(x_value, w_value), (x_value, w_value), grad)
    assert torch.equal(got[0], expected[0])
    assert torch.allclose(got[1], expected[1], rtol=1e-6, atol=1e-6)  # summed in another order


def test_w1a8_layer_computes_the_packed_kernels_product_bit_for_bit():
    torch.manual_seed(0)
    quantization = ComponentQuantization(weights="binary", center_weights=True, activations="int8")
    layer = QuantizedLinear(48, 10, quantization=quantization)
    torch.nn.init.normal_(layer.bias)
    x = torch.randn(2, 7, 48) * 3
    values, scale = layer.weight_quantizer.binary_parts(layer.weight)
    packed = reference.binary_linear_w1a8(x, pack_signs(values), scale, layer.bias.detach(), 48)
    assert torch.equal(layer(x).detach(), packed)


@pytest.mark.parametrize("weights", ["binary", "ternary"])
def test_int8_input_layers_keep_the_gradients_of_fake_quantized_values(weights):
    torch.manual_seed(1)
    quantization = ComponentQuantization(weights=weights, activations="int8")
    layer = QuantizedLinear(32, 12, quantization=quantization)
    x = torch.randn(3, 5, 32, requires_grad=True)
    out = layer(x)
    expected = torch.nn.functional.linear(layer.input_quantizer(x), layer.quantized_weight(), layer.bias)
    assert torch.allclose(out, expected, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, (x, layer.weight, layer.bias), grad)
    wanted = torch.autograd.grad(expected, (x, layer.weight, layer.bias), grad)
    for a, b in zip(got, wanted):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)
