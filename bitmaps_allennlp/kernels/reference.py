"""
Pure-torch reference implementations of the 1-bit kernels: the test oracle for the native
kernels, and the fallback that runs when they are not built. Layout: `bitmaps_allennlp.quantization.bit_packing`.
"""
from typing import Optional

import torch
import torch.nn.functional as F

from bitmaps_allennlp.quantization.bit_packing import WORD_BITS, unpack_signs
from bitmaps_allennlp.quantization.int8 import quantize_int8_rows
from bitmaps_allennlp.quantization.sign import binary_sign


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
    """Binary weights and activations (XNOR-Net): `(mean|x| * sign(x)) @ (scale * signs).T + bias`,
    as the integer dot products times (beta * scale), the order of the native epilogue and of
    training (`QuantizedLinear._one_bit_product`)."""
    beta = inputs.abs().mean(dim=-1, keepdim=True)
    return _scaled_dots(binary_sign(inputs), packed_weight, beta * scale, bias, in_features)


def _scaled_dots(levels, packed_weight, scale, bias, in_features) -> torch.Tensor:
    """Exact dot products of 1-bit (or {0, 1}) levels with the sign bits, times `scale`, plus bias."""
    dots = binary_weight_linear(levels, packed_weight, torch.ones(packed_weight.size(0), dtype=levels.dtype), None, in_features)
    out = dots * scale
    return out if bias is None else out + bias


def binary_linear_w1a8(
    inputs: torch.Tensor,
    packed_weight: torch.Tensor,
    scale: torch.Tensor,
    bias: Optional[torch.Tensor],
    in_features: int,
) -> torch.Tensor:
    """Binary weights, int8 activations (`quantization.int8`): `(dot(q, signs) * step) * scale
    + bias`, the order of the native epilogue. The integer dot products are exact in float32
    (|sum| < 2^24)."""
    levels, step = quantize_int8_rows(inputs)
    dots = binary_weight_linear(levels, packed_weight, torch.ones_like(scale), None, in_features)
    return dots * step * scale.to(inputs.dtype) + (0 if bias is None else bias)


def ternary_planes_linear(binary_kernel, inputs, planes, scale, bias, in_features) -> torch.Tensor:
    """Ternary weights as two sign planes (`quantization.bit_packing.pack_ternary`): `x @ (gamma *
    t).T + b = binary_kernel(x, u, gamma / 2) + binary_kernel(x, v, gamma / 2) + b`."""
    half = scale * 0.5
    out = binary_kernel(inputs, planes[0], half, None, in_features) + binary_kernel(inputs, planes[1], half, None, in_features)
    return out if bias is None else out + bias


def ternary_weight_linear(inputs, planes, scale, bias, in_features) -> torch.Tensor:
    """Ternary weights (BitNet b1.58), real activations."""
    return ternary_planes_linear(binary_weight_linear, inputs, planes, scale, bias, in_features)


def ternary_linear_w8(inputs, planes, scale, bias, in_features) -> torch.Tensor:
    """Ternary weights, int8 absmax activations per row (BitNet b1.58's W1.58A8)."""
    return ternary_planes_linear(binary_linear_w1a8, inputs, planes, scale, bias, in_features)


def elastic_levels(inputs: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor, signed: bool) -> torch.Tensor:
    """BiT's elastic binarization's levels, with the training quantizer's float operations
    (`ElasticBinarizer`): signed, sign((x - beta) / alpha) in {-1, +1}; two-set,
    round(clip((x - beta) / alpha, 0, 1)) in {0, 1}. The input's value is alpha times these."""
    scaled = (inputs - beta) / alpha
    return binary_sign(scaled) if signed else scaled.clamp(0, 1).round()


def binary_linear_elastic(inputs, packed_weight, scale, bias, in_features, alpha, beta) -> torch.Tensor:
    """Binary weights, BiT's elastic binary inputs alpha * sign((x - beta) / alpha)."""
    return _scaled_dots(elastic_levels(inputs, alpha, beta, signed=True), packed_weight, scale * alpha, bias, in_features)


def binary_linear_two_set(inputs, packed_weight, scale, bias, in_features, alpha, beta) -> torch.Tensor:
    """Binary weights, BiT's two-set inputs alpha * {0, 1} (non-negative inputs: post-GELU)."""
    return _scaled_dots(elastic_levels(inputs, alpha, beta, signed=False), packed_weight, scale * alpha, bias, in_features)
