"""
The 1-bit compute paths. Each function runs the native kernel when one is selected (see
`native.py`) and the inputs allow it (CPU float32, no gradient needed), else the pure-torch
reference, which computes the same thing and is what the tests compare against.
"""
from typing import Optional

import numpy as np
import torch

from bitmaps_allennlp.kernels import reference
from bitmaps_allennlp.kernels.native import available_paths, backend, native_module, select
from bitmaps_allennlp.packed.bit_packing import pack_signs as reference_pack_signs
from bitmaps_allennlp.packed.bit_packing import words_per_row


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


def xnor_popcount_dot(packed_a: torch.Tensor, packed_b: torch.Tensor, in_features: int) -> torch.Tensor:
    """`(M, W) x (N, W)` packed +-1 rows -> `(M, N)` int32 dot products."""
    native = _native_for(packed_a, packed_b)
    if native is None:
        return reference.xnor_popcount_dot(packed_a, packed_b, in_features).to(torch.int32)
    out = torch.empty(packed_a.size(0), packed_b.size(0), dtype=torch.int32)
    native.xnor_gemm(_words(packed_a), _words(packed_b), in_features, out.numpy(), torch.get_num_threads())
    return out


def _packed_linear(native_name: str, reference_fn, inputs, packed_weight, scale, bias, in_features):
    native = _native_for(inputs, packed_weight)
    if native is None or inputs.dtype != torch.float32:
        return reference_fn(inputs, packed_weight, scale, bias, in_features)
    x = inputs.reshape(-1, in_features).contiguous()
    out = torch.empty(x.size(0), packed_weight.size(0), dtype=torch.float32)
    if x.size(0):
        getattr(native, native_name)(
            x.numpy(), _words(packed_weight), _floats(scale), _floats(bias), out.numpy(), torch.get_num_threads()
        )
    return out.reshape(*inputs.shape[:-1], packed_weight.size(0))


def binary_weight_linear(
    inputs: torch.Tensor,
    packed_weight: torch.Tensor,
    scale: torch.Tensor,
    bias: Optional[torch.Tensor],
    in_features: int,
) -> torch.Tensor:
    """Binary weights (W1), real activations: `inputs @ (scale * signs).T + bias`."""
    return _packed_linear(
        "binary_weight_linear", reference.binary_weight_linear, inputs, packed_weight, scale, bias, in_features
    )


def binary_linear_w1a1(
    inputs: torch.Tensor,
    packed_weight: torch.Tensor,
    scale: torch.Tensor,
    bias: Optional[torch.Tensor],
    in_features: int,
) -> torch.Tensor:
    """Binary weights and binary activations (XNOR-Net): each input row becomes
    `mean|x| * sign(x)`, then `beta_i * alpha_j * (K - 2 popcount(x_i xor w_j)) + b_j`."""
    return _packed_linear(
        "binary_linear_w1a1", reference.binary_linear_w1a1, inputs, packed_weight, scale, bias, in_features
    )


def lut_weight_layout(packed_weight: torch.Tensor, in_features: int) -> Optional[torch.Tensor]:
    """The W1A8 kernels' weight layout (`csrc/int8_lut.h`), or `None` without the extension."""
    native = native_module()
    if native is None:
        return None
    n = packed_weight.size(0)
    # 32-column blocks x (16 groups of 4 bits per word) x 16 bytes
    out = torch.empty((n + 31) // 32, words_per_row(in_features) * 16 * 16, dtype=torch.uint8)
    native.lut_weight_layout(_words(packed_weight), in_features, out.numpy())
    return out


def binary_linear_w1a8(
    inputs: torch.Tensor,
    packed_weight: torch.Tensor,
    scale: torch.Tensor,
    bias: Optional[torch.Tensor],
    in_features: int,
    lut_weight: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Binary weights, int8 activations (absmax per row): table-lookup kernels when built (pass
    `lut_weight_layout`'s result to skip recomputing it), else the reference."""
    native = _native_for(inputs, packed_weight)
    if native is None or inputs.dtype != torch.float32:
        return reference.binary_linear_w1a8(inputs, packed_weight, scale, bias, in_features)
    if lut_weight is None:
        lut_weight = lut_weight_layout(packed_weight, in_features)
    x = inputs.reshape(-1, in_features).contiguous()
    out = torch.empty(x.size(0), packed_weight.size(0), dtype=torch.float32)
    if x.size(0):
        native.binary_linear_w1a8(x.numpy(), lut_weight.numpy(), _floats(scale), _floats(bias), out.numpy(), torch.get_num_threads())
    return out.reshape(*inputs.shape[:-1], packed_weight.size(0))


__all__ = [
    "available_paths",
    "backend",
    "select",
    "pack_signs",
    "xnor_popcount_dot",
    "binary_weight_linear",
    "binary_linear_w1a1",
    "binary_linear_w1a8",
    "lut_weight_layout",
]
