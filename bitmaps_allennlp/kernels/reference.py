"""
Pure-torch reference implementations of the 1-bit kernels: the test oracle for the native
kernels, and the fallback that runs when they are not built. Layout: `bitmaps_allennlp.packed.bit_packing`.
"""
from typing import Optional

import torch
import torch.nn.functional as F

from bitmaps_allennlp.packed.bit_packing import WORD_BITS, unpack_signs


def binary_weight_linear(
    inputs: torch.Tensor,
    packed_weight: torch.Tensor,
    scale: torch.Tensor,
    bias: Optional[torch.Tensor],
    in_features: int,
) -> torch.Tensor:
    """`inputs @ (scale * signs(packed_weight)).T + bias`: binary weights, real activations."""
    weight = unpack_signs(packed_weight, in_features, dtype=inputs.dtype) * scale.to(inputs.dtype)[:, None]
    return F.linear(inputs, weight, bias)


def xnor_popcount_dot(packed_a: torch.Tensor, packed_b: torch.Tensor, in_features: int) -> torch.Tensor:
    """Integer dot products of +-1 rows: `(M, W) x (N, W) -> (M, N)`, each
    `K - 2 * popcount(a xor b)` with the true K (padding bits are zero in both operands)."""
    xor = packed_a[:, None, :] ^ packed_b[None, :, :]
    shifts = torch.arange(WORD_BITS, dtype=torch.int64, device=xor.device)
    popcount = ((xor.unsqueeze(-1) >> shifts) & 1).sum(dim=(-1, -2))
    return in_features - 2 * popcount


def binary_linear_w1a1(
    inputs: torch.Tensor,
    packed_weight: torch.Tensor,
    scale: torch.Tensor,
    bias: Optional[torch.Tensor],
    in_features: int,
) -> torch.Tensor:
    """Binary weights and activations (XNOR-Net): `(mean|x| * sign(x)) @ (scale * signs).T + bias`."""
    beta = inputs.abs().mean(dim=-1, keepdim=True)
    signs = torch.where(inputs >= 0, 1.0, -1.0).to(inputs.dtype)
    return binary_weight_linear(signs, packed_weight, scale, None, in_features) * beta + (
        0 if bias is None else bias
    )


def quantize_int8_rows(inputs: torch.Tensor):
    """Absmax int8 per row, as the training quantizer (`Int8AbsMax`): integer values (as floats)
    and the scale 127 / max|x| they were multiplied by."""
    scale = 127.0 / inputs.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
    return (inputs * scale).round(), scale


def binary_linear_w1a8(
    inputs: torch.Tensor,
    packed_weight: torch.Tensor,
    scale: torch.Tensor,
    bias: Optional[torch.Tensor],
    in_features: int,
) -> torch.Tensor:
    """Binary weights, int8 activations: `(round(x * s) / s) @ (scale * signs).T + bias` with
    s = 127 / max|x| per row. The integer dot products are exact in float32 (|sum| < 2^24)."""
    levels, row_scale = quantize_int8_rows(inputs)
    dots = binary_weight_linear(levels, packed_weight, torch.ones_like(scale), None, in_features)
    return dots / row_scale * scale.to(inputs.dtype) + (0 if bias is None else bias)
