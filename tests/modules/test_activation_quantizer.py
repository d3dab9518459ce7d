import pytest
import torch

from allennlp.common.checks import ConfigurationError

from bitmaps_allennlp.modules.activation_quantizer import (
    ElasticBinarizer,
    Int8AbsMax,
    SignActivation,
    build_activation_quantizer,
)


def test_int8_absmax_per_token_rounds_on_a_grid_of_max_over_127():
    x = torch.tensor([[1.0, -0.5, 0.004], [0.0, 0.0, 0.0]], requires_grad=True)
    out = Int8AbsMax()(x)
    # row 0: step 1/127, -0.5 * 127 = -63.5 rounds (half to even) to -64, 0.004 * 127 = 0.508 to 1
    assert torch.allclose(out[0], torch.tensor([1.0, -64 / 127, 1 / 127]))
    assert out[1].tolist() == [0.0, 0.0, 0.0]  # an all-zero token stays zero, no division by 0
    out.sum().backward()
    assert x.grad.tolist() == [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]


def test_sign_activation_is_xnor_net_scaled_sign_per_token():
    x = torch.tensor([[0.5, -1.5, 0.0, 3.0]], requires_grad=True)
    out = SignActivation()(x)
    # mean |x| = 1.25
    assert out.tolist() == [[1.25, -1.25, 1.25, 1.25]]
    out.backward(torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
    # through the scale: s_0 * sign(x_j) / 4 (torch's d|x|/dx is 0 at 0); through the sign: 1.25 * 1{|x_0| <= 1}
    assert torch.allclose(x.grad, torch.tensor([[0.25 + 1.25, -0.25, 0.0, 0.25]]))


def test_elastic_signed_forward_and_bit_gradients():
    quantizer = ElasticBinarizer(signed=True)
    x = torch.tensor([0.5, -1.0, 3.0, 0.1], requires_grad=True)
    quantizer(x.detach())  # first call initialises alpha = mean |x| = 1.15, beta = 0
    assert torch.isclose(quantizer.alpha, torch.tensor(1.15))
    with torch.no_grad():
        quantizer.alpha.fill_(2.0)
        quantizer.beta.fill_(0.2)
    out = quantizer(x)
    # (x - beta) / alpha = [0.15, -0.6, 1.4, -0.05] -> sign -> [+, -, +, -] * alpha
    assert out.tolist() == [2.0, -2.0, 2.0, -2.0]
    out.sum().backward()
    # inside [-1, 1] (all but x_2): dx = 1, dbeta = -1; dalpha = q - scaled inside, q outside
    assert x.grad.tolist() == [1.0, 1.0, 0.0, 1.0]
    assert torch.isclose(quantizer.beta.grad, torch.tensor(-3.0))
    expected_alpha = (1 - 0.15) + (-1 + 0.6) + 1 + (-1 + 0.05)
    assert torch.isclose(quantizer.alpha.grad, torch.tensor(expected_alpha))


def test_two_set_maps_non_negative_inputs_to_zero_or_alpha():
    quantizer = ElasticBinarizer(signed=False)
    x = torch.tensor([0.2, 0.1, 0.6, 2.0, -0.3], requires_grad=True)
    quantizer(x.detach())  # alpha = 2 * mean(max(x, 0)) = 2 * 2.9 / 5
    assert torch.isclose(quantizer.alpha, torch.tensor(1.16))
    with torch.no_grad():
        quantizer.alpha.fill_(1.0)
    out = quantizer(x)
    assert out.tolist() == [0.0, 0.0, 1.0, 1.0, 0.0]
    out.sum().backward()
    # gradient to x (and -1 to beta) only inside [0, 1] after scaling
    assert x.grad.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert torch.isclose(quantizer.beta.grad, torch.tensor(-3.0))
    # dalpha = q - scaled inside the range, q outside: (0 - 0.2) + (0 - 0.1) + (1 - 0.6) + 1 + 0
    assert torch.isclose(quantizer.alpha.grad, torch.tensor(1.1))


def test_elastic_state_survives_a_reload_without_reinitialising():
    quantizer = ElasticBinarizer(signed=True)
    quantizer(torch.tensor([1.0, -3.0]))
    restored = ElasticBinarizer(signed=True)
    restored.load_state_dict(quantizer.state_dict())
    restored(torch.tensor([100.0, 100.0]))
    assert restored.alpha.item() == quantizer.alpha.item() == 2.0


def test_real_is_identity_and_unknown_mode_names_the_key():
    x = torch.randn(3, 4)
    assert torch.equal(build_activation_quantizer("real")(x), x)
    with pytest.raises(ConfigurationError, match="activations must be one of"):
        build_activation_quantizer("int4")


def test_every_mode_is_a_registered_quantizer_that_knows_its_mode():
    from bitmaps_allennlp.modules.activation_quantizer import ACTIVATION_MODES, ActivationQuantizer

    assert sorted(ActivationQuantizer.list_available()) == sorted(ACTIVATION_MODES)
    for mode in ACTIVATION_MODES:
        quantizer = ActivationQuantizer.build(mode)
        assert quantizer.mode == mode
        assert quantizer.one_bit == (mode in ("sign", "elastic", "two_set"))
    with pytest.raises(ConfigurationError, match="attention_probs must be one of"):
        ActivationQuantizer.build("ternary", key="attention_probs")
