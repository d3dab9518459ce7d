import numpy as np
import pytest
import torch

from bitmaps_allennlp import kernels
from bitmaps_allennlp.quantization.bit_packing import pack_signs
from bitmaps_allennlp.packed.packed_linear import PackedBinaryLinear


def _layer(scheme: str, seed: int = 0) -> PackedBinaryLinear:
    generator = torch.Generator().manual_seed(seed)
    w = torch.randn(40, 100, generator=generator)
    bias = torch.randn(40, generator=generator)
    return PackedBinaryLinear(100, 40, pack_signs(w), w.abs().mean(1), bias, scheme=scheme)


@pytest.mark.parametrize("scheme", ["w1a32", "w1a1", "w1a8"])
def test_cached_kernel_operands_follow_replaced_and_reloaded_buffers(scheme):
    # the layer keeps numpy views of its buffers for the kernels: a stale view would silently
    # compute with the old weights
    layer, other = _layer(scheme), _layer(scheme, seed=1)
    x = torch.randn(3, 100)
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


def test_packed_layer_without_native_kernels_uses_the_reference():
    layer = _layer("w1a1")
    x = torch.randn(2, 100, requires_grad=True)  # gradients: the kernels do not apply
    out = layer(x)
    with torch.inference_mode():
        native = layer(x.detach())
    assert out.requires_grad and torch.allclose(out, native, atol=1e-4)
    weights = layer._native_weights()
    if weights is not None:
        assert kernels.run_native("binary_linear_w1a1", x, weights) is None


def test_w1a1_layer_builds_the_weight_layout_for_the_path_it_runs_on():
    # built on a path without a W1A1 layout, then run on each path with one (nibbles for table
    # lookups, column octets for AVX-512 popcounts) and back: the layout follows the path, the
    # outputs stay the same integers
    from tests.conftest import selected_kernel_path

    native = kernels.native_module()
    if native is None or "scalar" not in kernels.available_paths():
        pytest.skip("no native extension")
    readers = [p for p in kernels.available_paths() if p not in ("reference", "scalar") and _reads_a_layout(p)]
    if not readers:
        pytest.skip("no path here reads a W1A1 weight layout")
    layer, x = _layer("w1a1"), torch.randn(5, 100)
    outputs = []
    with torch.inference_mode():
        for path in ("scalar", *readers, "scalar"):
            with selected_kernel_path(path):
                outputs.append(layer(x))
                assert (layer._native.layout is not None) == (path != "scalar"), path
                if path != "scalar":
                    assert layer._native.layout.dtype == (np.uint8 if kernels.native_module().reads_nibble_layout() else np.uint64)
    assert all(torch.allclose(outputs[0], out, atol=1e-5) for out in outputs[1:-1]) and torch.equal(outputs[0], outputs[-1])


def _reads_a_layout(path: str) -> bool:
    from tests.conftest import selected_kernel_path

    with selected_kernel_path(path):
        native = kernels.native_module()
        return native.reads_nibble_layout() or native.reads_octet_layout()
