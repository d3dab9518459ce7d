"""Every kernel path this machine can run (the pure-torch reference, and the native scalar, AVX2
and AVX-512 paths where built and supported) against the reference, on awkward shapes."""
import os
import subprocess
import sys

import pytest
import torch

from bitmaps_allennlp import kernels
from bitmaps_allennlp.kernels import reference
from bitmaps_allennlp.quantization.bit_packing import pack_signs as reference_pack
from tests.conftest import selected_kernel_path

PATHS = kernels.available_paths()
SHAPES = [(1, 1, 1), (1, 768, 768), (3, 5, 63), (7, 9, 64), (5, 6, 65), (33, 70, 200), (17, 130, 1000), (2, 3, 4096)]



def _operands(m, n, k, seed=0):
    generator = torch.Generator().manual_seed(seed + m * 1000 + n * 10 + k)
    x = torch.randn(m, k, generator=generator)
    w = torch.randn(n, k, generator=generator)
    x[0, 0] = -0.0  # sign(-0.0) = +1, as in training
    return x, w, w.abs().mean(1), torch.randn(n, generator=generator)


@pytest.mark.parametrize("m, n, k", SHAPES)
def test_pack_signs(path, m, n, k):
    x, *_ = _operands(m, n, k)
    assert torch.equal(kernels.pack_signs(x), reference_pack(x))


@pytest.mark.parametrize("m, n, k", SHAPES)
def test_xnor_dot_products_are_exact(path, m, n, k):
    x, w, *_ = _operands(m, n, k)
    got = kernels.xnor_popcount_dot(reference_pack(x), reference_pack(w), k)
    expected = torch.where(x >= 0, 1, -1) @ torch.where(w >= 0, 1, -1).T
    assert got.dtype == torch.int32 and torch.equal(got.long(), expected)


@pytest.mark.parametrize("m, n, k", SHAPES)
def test_binary_weight_linear(path, m, n, k):
    x, w, scale, bias = _operands(m, n, k)
    expected = x @ (scale[:, None] * torch.where(w >= 0, 1.0, -1.0)).T + bias
    got = kernels.binary_weight_linear(x, reference_pack(w), scale, bias, k)
    assert torch.allclose(got, expected, atol=1e-4 * k**0.5, rtol=1e-4)
    assert torch.allclose(kernels.binary_weight_linear(x, reference_pack(w), scale, None, k), expected - bias, atol=1e-4 * k**0.5, rtol=1e-4)


@pytest.mark.parametrize("m, n, k", SHAPES)
def test_w1a1_linear(path, m, n, k):
    x, w, scale, bias = _operands(m, n, k)
    beta = x.abs().mean(1, keepdim=True)
    dots = torch.where(x >= 0, 1.0, -1.0) @ torch.where(w >= 0, 1.0, -1.0).T
    expected = beta * scale * dots + bias
    got = kernels.binary_linear_w1a1(x, reference_pack(w), scale, bias, k)
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_batched_and_non_contiguous_inputs(path):
    x, w, scale, bias = _operands(6, 40, 130)
    batched = x.reshape(2, 3, 130)
    wide = torch.randn(2, 3, 260)[..., ::2]
    wide.copy_(batched)  # same values, stride 2
    for inputs in (batched, wide):
        got = kernels.binary_weight_linear(inputs, reference_pack(w), scale, bias, 130)
        assert got.shape == (2, 3, 40)
        assert torch.allclose(got.reshape(6, 40), reference.binary_weight_linear(x, reference_pack(w), scale, bias, 130), atol=1e-4)


def test_inputs_needing_gradients_use_the_reference(path):
    x, w, scale, bias = _operands(3, 4, 70)
    x.requires_grad_(True)
    kernels.binary_weight_linear(x, reference_pack(w), scale, bias, 70).sum().backward()
    assert x.grad is not None


def test_unknown_path_is_refused():
    with pytest.raises((ValueError, RuntimeError), match="avx9000"):
        kernels.select("avx9000")


def _python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}
    )


def test_environment_variable_forces_a_path():
    # in-process selection covers every path above; this checks the variable itself
    for path in {PATHS[0], PATHS[-1]}:
        result = _python("from bitmaps_allennlp import kernels; print(kernels.backend())", BITMAPS_KERNELS=path)
        assert result.stdout.strip() == path, result.stderr


def test_without_the_extension_everything_falls_back_with_one_warning():
    code = """
import sys, warnings
sys.modules["bitmaps_runtime._native"] = None  # as if it was never built
import torch
from bitmaps_allennlp import kernels
from bitmaps_allennlp.quantization.bit_packing import pack_signs
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    w = torch.randn(5, 70)
    for _ in range(3):
        y = kernels.binary_weight_linear(torch.randn(2, 70), pack_signs(w), w.abs().mean(1), None, 70)
print(kernels.backend(), len([c for c in caught if "not built" in str(c.message)]), tuple(y.shape))
"""
    result = _python(code, BITMAPS_KERNELS="auto")
    assert result.stdout.split() == ["reference", "1", "(2,", "5)"], result.stderr
    forced = _python(code, BITMAPS_KERNELS="avx2")
    assert forced.returncode != 0 and "not available" in forced.stderr


@pytest.mark.skipif(
    os.environ.get("BITMAPS_BUILD_NATIVE") == "0", reason="native build disabled on purpose"
)
def test_native_extension_is_built():
    # `make install` builds it; a broken build must fail here, not hide behind the fallback
    from bitmaps_runtime import native

    assert native._load_error is None, native._load_error
    assert "scalar" in PATHS


def test_large_shapes_split_across_threads_stay_exact(path):
    # big enough (m * n * words > 2**20) for the native paths to use the thread pool
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        x, w, scale, bias = _operands(160, 256, 4096)
        signs_x, signs_w = torch.where(x >= 0, 1.0, -1.0), torch.where(w >= 0, 1.0, -1.0)
        dots = signs_x @ signs_w.T  # exact in float32 for |dot| <= 4096
        got = kernels.xnor_popcount_dot(reference_pack(x), reference_pack(w), 4096) if path != "reference" else None
        if got is not None:
            assert torch.equal(got.float(), dots)
        w1a1 = kernels.binary_linear_w1a1(x, reference_pack(w), scale, bias, 4096)
        assert torch.allclose(w1a1, x.abs().mean(1, keepdim=True) * scale * dots + bias, atol=1e-3, rtol=1e-4)
    finally:
        torch.set_num_threads(threads)


def _w1a8_expected(x, w, scale, bias):
    row_scale = 127.0 / x.abs().amax(1, keepdim=True).clamp(min=1e-5)
    dots = (x * row_scale).round() @ torch.where(w >= 0, 1.0, -1.0).T  # integers, exact in float32
    return dots / row_scale * scale + bias


@pytest.mark.parametrize("m, n, k", SHAPES)
def test_w1a8_lookup_table_linear(path, m, n, k):
    x, w, scale, bias = _operands(m, n, k)
    expected = _w1a8_expected(x, w, scale, bias)
    got = kernels.binary_linear_w1a8(x, reference_pack(w), scale, bias, k)
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)
    batched = kernels.binary_linear_w1a8(x.reshape(1, m, k), reference_pack(w), scale, None, k)
    assert torch.allclose(batched.reshape(m, n), expected - bias, atol=1e-4, rtol=1e-5)


def test_w1a8_sums_do_not_overflow_on_the_largest_dot_products(path):
    # every activation at +127 against all -1 weights: |dot| = 127 * k, far beyond int16
    k = 4096
    x = torch.ones(3, k)
    x[1] = -1.0
    w = -torch.ones(40, k)
    w[7, ::2] = 1.0
    scale = torch.ones(40)
    got = kernels.binary_linear_w1a8(x, reference_pack(w), scale, None, k)
    expected = _w1a8_expected(x, w, scale, torch.zeros(40))
    assert got[0, 0].item() == -k and got[1, 0].item() == k and got[0, 7].item() == 0
    assert torch.allclose(got, expected, atol=1e-3)


def test_w1a8_splits_across_threads(path):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        x, w, scale, bias = _operands(160, 300, 1000)
        got = kernels.binary_linear_w1a8(x, reference_pack(w), scale, bias, 1000)
        assert torch.allclose(got, _w1a8_expected(x, w, scale, bias), atol=1e-4, rtol=1e-5)
    finally:
        torch.set_num_threads(threads)


def test_w1a8_rounds_half_to_even_like_the_training_quantizer(path):
    # max |x| = 127 makes the int8 scale exactly 1, so each of these is a tie. Half to even:
    # 0 + 2 + 2 + 4 = 8; half away from zero would give 11; floor(x + 0.5) 11 and -7.
    ties = torch.tensor([0.5, 1.5, 2.5, 4.5])
    x = torch.zeros(2, 70)
    x[:, 0] = 127.0
    x[0, 1:5] = ties
    x[1, 1:5] = -ties
    w = torch.ones(3, 70)
    got = kernels.binary_linear_w1a8(x, reference_pack(w), torch.ones(3), None, 70)
    assert got[:, 0].tolist() == [127.0 + 8.0, 127.0 - 8.0]


def _int8_boundary_rows() -> torch.Tensor:
    """Rows whose products x * scale sit exactly on .5 (ties), next to them by one ulp, or on the
    absmax floor, with scales of 1, 1/2 and 2 (exact in float32) and awkward ones."""
    rows = []
    ties = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, -126.5])
    for absmax, factor in ((127.0, 1.0), (254.0, 2.0), (63.5, 0.5)):
        row = torch.zeros(70)
        row[0] = absmax
        row[1 : 1 + len(ties)] = ties * factor
        row[20:28] = torch.nextafter(ties * factor, torch.full_like(ties, float("inf")))
        row[30:38] = torch.nextafter(ties * factor, torch.full_like(ties, -float("inf")))
        rows.append(row)
    rows.append(torch.zeros(70))  # all zero: the 1e-5 floor
    tiny = torch.zeros(70)
    tiny[:5] = torch.tensor([1e-6, -3e-6, 5e-6, 0.0, -0.0])
    rows.append(tiny)
    generator = torch.Generator().manual_seed(3)
    rows.extend(torch.randn(4, 70, generator=generator) * torch.tensor([[1e-3], [0.3], [7.0], [3e4]]))
    return torch.stack(rows)


def test_int8_quantization_is_bit_identical_on_every_path_and_in_training(path):
    """One definition (`quantization.int8`): the training quantizer, the reference and each
    native path give the same q and step, to the bit, on rounding boundaries too."""
    from bitmaps_allennlp.modules.activation_quantizer import Int8AbsMax
    from bitmaps_allennlp.quantization.int8 import quantize_int8_rows

    x = _int8_boundary_rows()
    expected_q, expected_step = quantize_int8_rows(x)
    assert expected_q[0, 1:9].tolist() == [0.0, 2.0, 2.0, -0.0, -2.0, -2.0, 126.0, -126.0]  # half to even
    q, step = kernels.quantize_int8_rows(x)
    assert torch.equal(q, expected_q)
    assert torch.equal(step.view(torch.int32), expected_step.view(torch.int32))
    # training sees q * step, the same float32 product the kernels' epilogue starts from
    assert torch.equal(Int8AbsMax()(x).view(torch.int32), (expected_q * expected_step).view(torch.int32))


def test_the_int8_scale_is_one_correctly_rounded_division():
    """torch's `127.0 / tensor` is reciprocal-then-multiply (two roundings): the definition must
    not use it, or the training scale differs from the kernels' `127.0f / absmax`."""
    import numpy as np

    from bitmaps_allennlp.quantization.int8 import int8_scale

    absmax = torch.rand(20000, generator=torch.Generator().manual_seed(0)) * 1e4 + 1e-3
    x = torch.zeros(20000, 3)
    x[:, 1] = absmax
    expected = np.float32(127.0) / absmax.numpy()
    assert np.array_equal(int8_scale(x)[:, 0].numpy(), expected)


def test_a_native_layer_refuses_operands_that_do_not_make_one():
    # the packed modules' layers (`kernels.native_layer`): every field checked before use, the
    # message naming it; the weight layouts themselves are derived in C++, never passed in
    import numpy as np

    native = kernels.native_module()
    if native is None:
        pytest.skip("no native extension")
    x, w, scale, bias = _operands(4, 40, 100)
    words = reference_pack(w).numpy().view(np.uint64)
    ok = (words, scale.numpy(), bias.numpy(), 1.0, 0.0)
    with pytest.raises(ValueError, match="unknown scheme id 99"):
        native.layer_new(99, 100, 40, *ok)
    with pytest.raises(ValueError, match="packed_weight does not hold 40 x 130 bits"):
        native.layer_new(2, 130, 40, *ok)
    with pytest.raises(ValueError, match="needs a scale per output"):
        native.layer_new(2, 100, 40, words, scale[:39].numpy(), None, 1.0, 0.0)
    with pytest.raises(ValueError, match="needs a bias per output"):
        native.layer_new(2, 100, 40, words, scale.numpy(), bias[:3].numpy(), 1.0, 0.0)
    with pytest.raises(TypeError, match="packed_weight must hold uint64"):
        native.layer_new(2, 100, 40, w.numpy(), scale.numpy(), None, 1.0, 0.0)
    with pytest.raises(ValueError, match="packed_weight must be 3-dimensional"):  # ternary: two sign planes
        native.layer_new(6, 100, 40, *ok)
    with pytest.raises(ValueError, match="input_alpha must be positive"):  # checked when first prepared
        native.layer_forward(native.layer_new(3, 100, 40, words, scale.numpy(), None, 0.0, 0.0), x.numpy(), np.empty((4, 40), np.float32), 1)
    layer = native.layer_new(2, 100, 40, *ok)
    with pytest.raises(ValueError, match=r"x has shape \(4, 99\), expected rows of 100"):
        native.layer_forward(layer, x[:, :99].contiguous().numpy(), np.empty((4, 40), np.float32), 1)
    with pytest.raises(ValueError, match=r"out has shape \(4, 41\), expected \(4, 40\)"):
        native.layer_forward(layer, x.numpy(), np.empty((4, 41), np.float32), 1)
    out = np.empty((4, 40), np.float32)
    native.layer_forward(layer, x.numpy(), out, 1)
    assert torch.allclose(torch.from_numpy(out), reference.binary_linear_w1a8(x, reference_pack(w), scale, bias, 100), atol=1e-4)
