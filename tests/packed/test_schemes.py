"""Every row of the scheme registry, on every kernel path: packed from a trained quantized linear
by its own `pack`, stored as its own tensor list says, and run by its reference and its native
entry point, it computes what the fake-quantized training layer computes."""
import numpy as np
import pytest
import torch

from bitmaps_allennlp import kernels
from bitmaps_allennlp.modules.component_quantization import ComponentQuantization
from bitmaps_allennlp.modules.quantized_linear import QuantizedLinear
from bitmaps_allennlp.packed.packed_bert import packed_linear
from bitmaps_allennlp.packed.schemes import SCHEMES, UnknownScheme, scheme_for, scheme_named
from tests.conftest import selected_kernel_path

_NUMPY = {"U64": np.uint64, "F32": np.float32, "F16": np.float16}



def _trained_layer(scheme, in_features, out_features, seed=0) -> QuantizedLinear:
    torch.manual_seed(seed)
    quantization = ComponentQuantization(
        weights=scheme.weights,
        activations=scheme.activations,
        center_weights=scheme.weights == "binary",
        weight_scale="per_tensor" if scheme.weights == "ternary" else "mean_abs",
    )
    layer = QuantizedLinear(in_features, out_features, quantization=quantization)
    with torch.no_grad():
        layer.bias.normal_()
    return layer.eval()


@pytest.mark.parametrize("name", sorted(SCHEMES))
@pytest.mark.parametrize("in_features, out_features, rows", [(70, 33, 5), (384, 96, 17), (1, 1, 1)])
def test_every_scheme_matches_its_training_layer_on_every_path(name, in_features, out_features, rows, path):
    scheme = SCHEMES[name]
    layer = _trained_layer(scheme, in_features, out_features)
    x = torch.randn(rows, in_features) * 3
    if scheme.activations == "two_set":
        x = torch.nn.functional.gelu(x)  # what two-set inputs are: non-negative (post-GELU)
    with torch.no_grad():
        layer(x)  # data-initialised input quantizers (BiT's alpha) start from this batch
        if scheme.learned_inputs:  # a learned threshold, as training leaves it
            layer.input_quantizer.beta.fill_(0.05)
        stored = scheme.pack(layer)
    assert set(stored) == {spec.role for spec in scheme.tensors}
    for spec in scheme.tensors:
        assert stored[spec.role].dtype == _NUMPY[spec.dtype]
        assert stored[spec.role].shape == spec.shape(in_features, out_features)
    tensors = {f"layer.{role}": torch.from_numpy(array.view(np.int64) if array.dtype == np.uint64 else array) for role, array in stored.items()}
    tensors["layer.bias"] = layer.bias.detach()
    packed = packed_linear("layer", {"in_features": in_features, "out_features": out_features, "scheme": name}, tensors)
    assert not tensors  # the layer took every tensor of its scheme
    with torch.inference_mode():
        expected = layer(x)
        got = packed(x)
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4), (got - expected).abs().max()
    if scheme.learned_inputs:
        # BiT's 1-bit inputs with stored alpha and beta: integer dots and one epilogue in the same
        # order in training and packed, on every path, so the outputs agree to the bit (a W1A1
        # network turns a last-bit difference next to zero into a flipped sign downstream)
        assert torch.equal(got, expected)


def test_every_scheme_is_found_from_its_training_knobs():
    for scheme in SCHEMES.values():
        assert scheme_for(scheme.weights, scheme.activations) is scheme
        assert scheme_named(scheme.name) is scheme
    with pytest.raises(UnknownScheme, match="no packed scheme holds ternary weights with sign activations"):
        scheme_for("ternary", "sign")
    with pytest.raises(UnknownScheme, match="unknown packed scheme 'w9a9'"):
        scheme_named("w9a9")
