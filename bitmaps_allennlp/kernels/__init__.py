"""
The 1-bit compute paths. Each function runs the native kernel when one is selected (see
`native.py`) and the inputs allow it (CPU float32, no gradient needed), else the pure-torch
reference, which computes the same thing and is what the tests compare against.
"""
from typing import Optional

import numpy as np
import torch
from bitmaps_runtime.formats import SCHEME_SPECS

from bitmaps_allennlp.kernels import reference
from bitmaps_allennlp.kernels.native import available_paths, backend, native_module, select
from bitmaps_allennlp.quantization.bit_packing import pack_signs as reference_pack_signs
from bitmaps_allennlp.quantization.bit_packing import words_per_row
from bitmaps_allennlp.quantization.int8 import quantize_int8_rows as reference_quantize_int8_rows


def _native_for(*tensors: torch.Tensor):
    native = native_module()
    if native is None:
        return None
    for tensor in tensors:
        if tensor.device.type != "cpu" or tensor.requires_grad:
            return None
    return native


def _words(packed: torch.Tensor) -> np.ndarray:
    return packed.contiguous().numpy().view(np.uint64)


def _floats(tensor: Optional[torch.Tensor]) -> Optional[np.ndarray]:
    return None if tensor is None else tensor.detach().float().contiguous().numpy()


def pack_signs(values: torch.Tensor) -> torch.Tensor:
    """`(rows, K)` -> `(rows, ceil(K/64))` int64 words (the layout of `bit_packing`)."""
    native = _native_for(values)
    if native is None or values.dtype != torch.float32 or values.dim() != 2:
        return reference_pack_signs(values)
    out = torch.empty(values.size(0), words_per_row(values.size(1)), dtype=torch.int64)
    native.pack_signs(values.contiguous().numpy(), out.numpy().view(np.uint64), None)
    return out


def quantize_int8_rows(inputs: torch.Tensor) -> "tuple[torch.Tensor, torch.Tensor]":
    """`(rows, K)` float32 -> the int8 levels `q` (as float32) and each row's `step`, shape
    `(rows, 1)`, computed by the selected path's quantizer (`quantization.int8` defines it)."""
    native = _native_for(inputs)
    if native is None or inputs.dtype != torch.float32 or inputs.dim() != 2 or inputs.size(1) == 0:
        return reference_quantize_int8_rows(inputs)
    q = np.empty(tuple(inputs.shape), dtype=np.int8)
    step = np.empty(inputs.size(0), dtype=np.float32)
    native.quantize_int8_rows(inputs.contiguous().numpy(), q, step)
    return torch.from_numpy(q).float(), torch.from_numpy(step)[:, None]


def xnor_popcount_dot(packed_a: torch.Tensor, packed_b: torch.Tensor, in_features: int) -> torch.Tensor:
    """`(M, W) x (N, W)` packed +-1 rows -> `(M, N)` int32 dot products."""
    native = _native_for(packed_a, packed_b)
    if native is None:
        return reference.xnor_popcount_dot(packed_a, packed_b, in_features).to(torch.int32)
    out = torch.empty(packed_a.size(0), packed_b.size(0), dtype=torch.int32)
    native.xnor_gemm(_words(packed_a), _words(packed_b), in_features, out.numpy(), torch.get_num_threads())
    return out


def native_applies(inputs: torch.Tensor) -> bool:
    """Whether a native layer can take these inputs: float32 on the CPU, no gradient needed, and a
    native path selected. At M=1 a layer takes a few microseconds: this stays cheap."""
    return inputs.is_cpu and not inputs.requires_grad and inputs.dtype == torch.float32 and native_module() is not None


def native_layer(
    native_id: int,
    in_features: int,
    out_features: int,
    packed_weight: torch.Tensor,
    scale: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    input_alpha: Optional[torch.Tensor] = None,
    input_beta: Optional[torch.Tensor] = None,
):
    """A packed layer in the native core (`_native.layer_new`), run by `run_layer` through
    `run_linear` (runtime/csrc/linear.h), the code the C++ encoder runs for each of its linears,
    for every scheme (`native_id`: `bitmaps_runtime.formats.SCHEME_SPECS`). None when no native
    path is selected or the tensors are not on the CPU. The layer points into the tensors (numpy
    views, kept alive with it): in-place updates of their contents need a new layer, because the
    weight layouts and scales it derives are built from the contents on first use (and again after
    a switch to a path that reads other layouts)."""
    native = _native_for(packed_weight, scale)
    if native is None or any(t is not None and t.device.type != "cpu" for t in (bias, input_alpha, input_beta)):
        return None
    alpha = 1.0 if input_alpha is None else float(input_alpha.reshape(()))
    beta = 0.0 if input_beta is None else float(input_beta.reshape(()))
    return native.layer_new(native_id, in_features, out_features, _words(packed_weight), _floats(scale), _floats(bias), alpha, beta)


def run_layer(layer, inputs: torch.Tensor, in_features: int, out_features: int) -> torch.Tensor:
    """A `native_layer` on `(..., in_features)` inputs for which `native_applies` (the caller checks:
    at M=1 each check shows)."""
    x = inputs if inputs.dim() == 2 else inputs.reshape(-1, in_features)
    if not x.is_contiguous():
        x = x.contiguous()
    out = np.empty((x.shape[0], out_features), dtype=np.float32)
    native_module().layer_forward(layer, x.numpy(), out, torch.get_num_threads())
    result = torch.from_numpy(out)
    return result if inputs.dim() == 2 else result.reshape(*inputs.shape[:-1], out_features)


def _one_call(scheme: str, reference_fn, inputs, packed_weight, scale, bias, in_features) -> torch.Tensor:
    """A layer of packed scheme `scheme` (`bitmaps_runtime.formats.SCHEME_SPECS`) built for this one
    call: the native core's `run_linear` where it applies, else `reference_fn`. Packed modules keep
    their layer instead (`packed.packed_linear.PackedLinear`)."""
    out_features = packed_weight.size(-2)
    if native_applies(inputs):
        layer = native_layer(SCHEME_SPECS[scheme].native_id, in_features, out_features, packed_weight, scale, bias)
        if layer is not None:
            return run_layer(layer, inputs, in_features, out_features)
    return reference_fn(inputs, packed_weight, scale, bias, in_features)


def binary_weight_linear(inputs, packed_weight, scale, bias, in_features) -> torch.Tensor:
    """Binary weights (W1), real activations: `inputs @ (scale * signs).T + bias` (`w1a32`)."""
    return _one_call("w1a32", reference.binary_weight_linear, inputs, packed_weight, scale, bias, in_features)


def binary_linear_w1a1(inputs, packed_weight, scale, bias, in_features) -> torch.Tensor:
    """Binary weights and binary activations (XNOR-Net, `w1a1`): each input row becomes
    `mean|x| * sign(x)`, then `beta_i * alpha_j * (K - 2 popcount(x_i xor w_j)) + b_j`, by table
    lookup or on column octets where the path has them."""
    return _one_call("w1a1", reference.binary_linear_w1a1, inputs, packed_weight, scale, bias, in_features)


def binary_linear_w1a8(inputs, packed_weight, scale, bias, in_features) -> torch.Tensor:
    """Binary weights, int8 activations (absmax per row, `w1a8`), exact: table lookups or VNNI
    int8 products."""
    return _one_call("w1a8", reference.binary_linear_w1a8, inputs, packed_weight, scale, bias, in_features)


__all__ = [
    "available_paths",
    "backend",
    "select",
    "pack_signs",
    "quantize_int8_rows",
    "xnor_popcount_dot",
    "binary_weight_linear",
    "binary_linear_w1a1",
    "binary_linear_w1a8",
    "native_applies",
    "native_layer",
    "run_layer",
]
