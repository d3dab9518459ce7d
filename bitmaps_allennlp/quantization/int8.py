"""
Absmax int8 quantization per row (per token), the one definition that the training quantizer
(`activations: "int8"`), the reference kernels and every native path (`csrc/int8_lut.cpp`,
`csrc/quantize_avx2.h`) compute, bit for bit:

    scale = 127 / max(max|x|, 1e-5)          float32, one division
    q     = round_half_to_even(x * scale)    integers in [-127, 127], one float32 product each
    step  = 1 / scale                        float32, one division
    x~    = q * step                         the dequantized value

The order of these float32 operations is part of the definition: `q / scale` instead of
`q * step` differs in the last bit for some rows, and on an int8 rounding boundary a last-bit
difference in an earlier layer's output flips a later layer's q. Native kernels compute
`(sum_k q_k w_k) * step * alpha`, and so does training (`integer_product`).
"""
from typing import Tuple

import torch

INT8_MAX = 127
# keeps the scale finite for an all-zero row (whose q are then all 0)
ABSMAX_FLOOR = 1e-5


def _divide(numerator: float, denominator: torch.Tensor) -> torch.Tensor:
    # `127.0 / tensor` is not a division in torch: it computes reciprocal(tensor) * 127, two
    # roundings, which differ from C++'s `127.0f / absmax` in the last bit for about a quarter
    # of all values. A tensor divided by a tensor is one correctly rounded division.
    return torch.full_like(denominator, numerator) / denominator


def int8_scale(x: torch.Tensor) -> torch.Tensor:
    """`127 / max(max|x|, 1e-5)` over the last dimension, shape `(..., 1)`, float32 for float32 x."""
    return _divide(INT8_MAX, x.detach().abs().amax(dim=-1, keepdim=True).clamp(min=ABSMAX_FLOOR))


def quantize_int8_rows(x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The integer levels `q` (as floats, exact) and each row's `step`, shape `(..., 1)`."""
    scale = int8_scale(x)
    return (x.detach() * scale).round(), _divide(1.0, scale)


class _FakeQuantizeInt8(torch.autograd.Function):
    # A Function rather than `x + (q * step - x).detach()`: that sum is not always q * step to the
    # last bit, and it keeps three more full-size tensors alive for the backward pass.
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # type: ignore[override]
        levels, step = quantize_int8_rows(x)
        ctx.mark_non_differentiable(levels, step)
        return levels * step, levels, step

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor, *_) -> torch.Tensor:  # type: ignore[override]
        return grad_output


def fake_quantize_int8_parts(x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`(q * step, q, step)`: the dequantized value with the identity as its gradient (the
    straight-through estimator of BitNet and LLM.int8 training), and its levels and steps."""
    return _FakeQuantizeInt8.apply(x)


def fake_quantize_int8_rows(x: torch.Tensor) -> torch.Tensor:
    """Exactly `q * step`, with the identity as its gradient."""
    return fake_quantize_int8_parts(x)[0]
