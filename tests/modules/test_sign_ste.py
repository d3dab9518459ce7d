import math

import pytest
import torch

from allennlp.common.checks import ConfigurationError

from bitmaps_allennlp.modules.sign_ste import binary_sign, check_estimator, sign_ste


def test_sign_maps_zero_to_plus_one_and_keeps_two_values():
    x = torch.tensor([-2.0, -0.5, -0.0, 0.0, 0.3, 4.0])
    assert binary_sign(x).tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0, 1.0]


def test_ste_forward_is_sign_and_backward_is_clipped_identity():
    x = torch.tensor([-1.5, -1.0, -0.2, 0.0, 0.7, 1.0, 1.01], requires_grad=True)
    y = sign_ste(x)
    assert y.tolist() == [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0]
    y.backward(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]))
    # gradient passes where |x| <= 1, is cut where |x| > 1
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0]


@pytest.mark.parametrize(
    "estimator, expected",
    [
        # clipped identity: 1 inside [-1, 1]
        ("clipped", [0.0, 1.0, 1.0, 1.0, 0.0]),
        # 1 - tanh(x)^2
        ("tanh", [1 - math.tanh(1.5) ** 2, 1 - math.tanh(0.5) ** 2, 1.0, 1 - math.tanh(0.5) ** 2, 1 - math.tanh(2.0) ** 2]),
        # Bi-Real's ApproxSign: 2 - 2|x| inside [-1, 1]
        ("approx_sign", [0.0, 1.0, 2.0, 1.0, 0.0]),
    ],
)
def test_each_estimator_backward_is_its_surrogate_derivative(estimator, expected):
    x = torch.tensor([-1.5, -0.5, 0.0, 0.5, 2.0], requires_grad=True)
    y = sign_ste(x, estimator)
    assert y.tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]
    y.sum().backward()
    assert torch.allclose(x.grad, torch.tensor(expected))


def test_unknown_estimator_names_the_key():
    with pytest.raises(ConfigurationError, match="estimator.*'relu'"):
        check_estimator("relu")
