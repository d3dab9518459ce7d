import pytest
import torch

from bitmaps_allennlp.kernels.reference import binary_weight_linear, xnor_popcount_dot
from bitmaps_allennlp.quantization.bit_packing import pack_signs, unpack_signs


def test_bit_convention_is_pinned():
    values = torch.zeros(1, 66)
    values[0, 0] = -1.0  # bit 0 of word 0
    values[0, 63] = -0.1  # bit 63 of word 0 (the int64 sign bit)
    values[0, 65] = -3.0  # bit 1 of word 1; bits 66..127 are zero padding
    values[0, 1] = 0.0  # sign(0) = +1 -> bit 0
    words = pack_signs(values)
    assert words.tolist() == [[1 - 2**63, 2]]  # 0x8000000000000001 as int64, then 0b10


@pytest.mark.parametrize("k", [1, 7, 63, 64, 65, 130, 384])
def test_round_trip_for_any_width(k):
    torch.manual_seed(k)
    values = torch.randn(5, k)
    signs = torch.where(values >= 0, 1.0, -1.0)
    assert torch.equal(unpack_signs(pack_signs(values), k), signs)


@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (3, 4, 63), (2, 5, 64), (4, 3, 65), (1, 7, 200)])
def test_xnor_popcount_dot_equals_the_float_dot(m, n, k):
    torch.manual_seed(m * n * k)
    a, b = torch.randn(m, k), torch.randn(n, k)
    expected = torch.where(a >= 0, 1, -1) @ torch.where(b >= 0, 1, -1).T
    assert torch.equal(xnor_popcount_dot(pack_signs(a), pack_signs(b), k), expected)


def test_binary_weight_linear_matches_the_training_formula():
    torch.manual_seed(0)
    weight, x, bias = torch.randn(6, 70), torch.randn(3, 70), torch.randn(6)
    scale = weight.abs().mean(1)
    expected = x @ (scale[:, None] * torch.where(weight >= 0, 1.0, -1.0)).T + bias
    got = binary_weight_linear(x, pack_signs(weight), scale, bias, 70)
    assert torch.allclose(got, expected, atol=1e-5)
    # non-contiguous input
    wide = torch.randn(3, 140)[:, ::2]
    assert torch.allclose(
        binary_weight_linear(wide, pack_signs(weight), scale, None, 70),
        wide @ (scale[:, None] * torch.where(weight >= 0, 1.0, -1.0)).T,
        atol=1e-5,
    )


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="2-d"):
        pack_signs(torch.zeros(3))
    with pytest.raises(ValueError, match="rows of 65 values"):
        unpack_signs(torch.zeros(2, 1, dtype=torch.int64), 65)


def test_ternary_levels_round_trip_through_two_sign_planes():
    from bitmaps_allennlp.quantization.bit_packing import pack_ternary, unpack_ternary

    generator = torch.Generator().manual_seed(0)
    levels = torch.randint(-1, 2, (7, 130), generator=generator).float()
    planes = pack_ternary(levels)
    assert planes.shape == (2, 7, 3)
    assert torch.equal(unpack_ternary(planes, 130), levels)
    # t = (u + v) / 2: zero is u = +1, v = -1
    assert torch.equal(unpack_signs(planes[0], 130), torch.where(levels >= 0, 1.0, -1.0))
    assert torch.equal(unpack_signs(planes[1], 130), torch.where(levels > 0, 1.0, -1.0))
