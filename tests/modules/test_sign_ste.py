import torch

from bitmaps_allennlp.modules.sign_ste import binary_sign, sign_ste


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
