import copy

import pytest
import torch

from bitmaps_allennlp import kernels
from bitmaps_allennlp.kernels import reference
from bitmaps_allennlp.packed.packed_linear import PackedLinear
from bitmaps_allennlp.quantization.bit_packing import pack_signs, pack_ternary


def _layer(scheme: str, seed: int = 0) -> PackedLinear:
    generator = torch.Generator().manual_seed(seed)
    w = torch.randn(40, 100, generator=generator)
    bias = torch.randn(40, generator=generator)
    if scheme.startswith("w158"):
        levels = torch.randint(-1, 2, (40, 100), generator=generator).float()
        return PackedLinear(100, 40, pack_ternary(levels), w.abs().mean(1), bias, scheme=scheme)
    extra = {}
    if scheme.startswith("w1a1_"):
        extra = {"input_alpha": torch.tensor(0.7 + seed), "input_beta": torch.tensor(0.05)}
    return PackedLinear(100, 40, pack_signs(w), w.abs().mean(1), bias, scheme=scheme, **extra)


SCHEMES = ["w1a32", "w1a1", "w1a8", "w1a1_elastic", "w1a1_two_set", "w158a32", "w158a8"]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_native_layer_follows_replaced_and_reloaded_buffers(scheme):
    # the native layer points into the buffers and derives layouts and epilogue scales from their
    # contents: a stale one would silently compute with the old weights or scales
    layer, other = _layer(scheme), _layer(scheme, seed=1)
    x = torch.randn(3, 100).abs() if scheme == "w1a1_two_set" else torch.randn(3, 100)
    with torch.inference_mode():
        before = layer(x)
        layer.scale = layer.scale * 2  # a new tensor in the buffer's place
        doubled = layer(x)
        layer.load_state_dict(other.state_dict())  # copied into the existing buffers
        reloaded = layer(x)
        expected = other(x)
    bias = _layer(scheme).bias
    assert torch.allclose(doubled - bias, 2 * (before - bias), atol=1e-4)
    assert torch.allclose(reloaded, expected)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_packed_layer_runs_the_reference_where_the_kernels_do_not_apply(scheme):
    layer = _layer(scheme)
    x = torch.randn(2, 100, requires_grad=True)  # gradients: the kernels do not apply
    out = layer(x)
    with torch.inference_mode():
        native = layer(x.detach())
    assert torch.allclose(out, native, atol=1e-4)
    assert not kernels.native_applies(x)


def test_a_packed_layer_copies_without_its_native_layer():
    layer = _layer("w1a1")
    x = torch.randn(2, 100)
    with torch.inference_mode():
        expected = layer(x)
        clone = copy.deepcopy(layer)  # a capsule cannot be copied: the copy builds its own
        assert clone._native is None
        assert torch.equal(clone(x), expected)
    assert layer._native is None or clone._native is not layer._native


def test_w158a8_runs_as_one_layer_on_every_path(path):
    # the torch modules run the encoder's code: on a path with the fused ternary kernel both planes
    # in one product, elsewhere two plane products; near the reference everywhere
    layer, x = _layer("w158a8"), torch.randn(9, 100) * 3
    with torch.inference_mode():
        got = layer(x)
    expected = reference.ternary_linear_w8(x, layer.packed_weight, layer.scale, layer.bias, 100)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)


def test_a_layer_follows_a_switch_of_kernel_path():
    # built on one path, then run on each path this machine has and back: the layer is prepared
    # again for a path that reads other weight layouts (nibbles for table lookups, column octets
    # for AVX-512 popcounts); the outputs stay the same integers
    from tests.conftest import selected_kernel_path

    if kernels.native_module() is None:
        pytest.skip("no native extension")
    paths = [p for p in kernels.available_paths() if p != "reference"]
    layer, x = _layer("w1a1"), torch.randn(5, 100)
    outputs = []
    with torch.inference_mode():
        for path in (*paths, paths[0]):
            with selected_kernel_path(path):
                outputs.append(layer(x))
    assert all(torch.allclose(outputs[0], out, atol=1e-5) for out in outputs[1:-1]) and torch.equal(outputs[0], outputs[-1])
