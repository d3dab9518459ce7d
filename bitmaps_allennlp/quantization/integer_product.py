"""
The product of two quantized operands whose levels are small integers (int8 activations or 1-bit
inputs, against binary or ternary weights), as training computes it: the exact integer dot
products of the levels, then the scales, in the order the packed kernels apply them:

    y = (sum_k x_levels[k] * w_levels[k]) * x_scale * w_scale

The sums are integers below 2**24 (|x_levels| <= 127, |w_levels| <= 1, at most 132,104 terms), so
a float32 product of the levels already computes them exactly. On a CPU with AVX-512 VNNI an
int8 matrix product (`torch._int_mm`, which runs oneDNN's `vpdpbusd` kernel there) computes the
same integers 3-3.4x faster than the float32 one (2 Zen 4 cores), which is what makes this worth a
function: the student's forward products are a fifth of a distillation step's arithmetic. Without
VNNI, torch computes `_int_mm` in a plain loop, about 26x slower than the float32 product, so
there the float32 product computes the sums. Either way the result is bit for bit the same.

The backward pass is `linear`'s, from the quantized values the forward pass stands for
(`x_value = x_levels * x_scale`, `w_value = w_levels * w_scale`, each carrying its quantizer's
straight-through gradient): the gradients are those of `linear(x_value, w_value)`, and the scales
take no gradient of their own here (they reach it through the values).
"""
from typing import Optional

import torch

# a float32 sum of integers is exact below 2**24; the levels' product is at most 127
EXACT_FLOAT32_TERMS = 2**24 // 127


# torch's test for its oneDNN int8 path (module docstring), read once: a call inside a compiled
# layer would be traced on every compilation
_CPU_INT8_PRODUCTS = hasattr(torch, "_int_mm") and getattr(torch.cpu, "_is_vnni_supported", lambda: False)()


def _int8_products_available(levels: torch.Tensor) -> bool:
    # CUDA's int8 product wants shapes in multiples of 8 and more than 16 rows; the float32
    # product is exact there too
    return levels.device.type == "cpu" and _CPU_INT8_PRODUCTS


def integer_dots(x_levels: torch.Tensor, w_levels: torch.Tensor) -> torch.Tensor:
    """`x_levels @ w_levels.T` without a gradient, for float tensors holding integer levels in int8's
    range (x: (..., k), w: (n, k)), as float32 values of the exact integer sums."""
    k = x_levels.size(-1)
    if k > EXACT_FLOAT32_TERMS:
        raise ValueError(f"integer dot products over {k} terms can exceed float32's exact integers")
    if not _int8_products_available(x_levels):
        return torch.nn.functional.linear(x_levels, w_levels)
    rows = x_levels.reshape(-1, k).to(torch.int8)
    dots = torch._int_mm(rows, w_levels.to(torch.int8).t())
    return dots.to(x_levels.dtype).reshape(*x_levels.shape[:-1], w_levels.size(0))


class _IntegerProduct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_value, w_value, x_levels, w_levels, x_scale, w_scale):  # type: ignore[override]
        ctx.save_for_backward(x_value, w_value)
        out = integer_dots(x_levels, w_levels)
        if x_scale is not None:
            out = out * x_scale
        if w_scale is not None:
            out = out * w_scale
        return out

    @staticmethod
    def backward(ctx, grad_output):  # type: ignore[override]
        x_value, w_value = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_output @ w_value.to(grad_output.dtype)
        if ctx.needs_input_grad[1]:
            rows = grad_output.reshape(-1, grad_output.size(-1))
            grad_w = rows.t() @ x_value.reshape(-1, x_value.size(-1)).to(grad_output.dtype)
        return grad_x, grad_w, None, None, None, None


def integer_product(
    x_value: torch.Tensor,
    w_value: torch.Tensor,
    x_levels: torch.Tensor,
    w_levels: torch.Tensor,
    x_scale: Optional[torch.Tensor] = None,
    w_scale: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """`(x_levels @ w_levels.T) * x_scale * w_scale` with the exact integer sums (module docstring),
    and `linear(x_value, w_value)`'s gradients for `x_value` (..., k) and `w_value` (n, k).

    `x_scale` broadcasts against the output, (..., 1) per row; `w_scale` is (n,) or (1,). Without
    scales (1-bit levels whose scales the caller applies), the values are the levels themselves.
    """
    x_scale = None if x_scale is None else x_scale.detach()
    w_scale = None if w_scale is None else w_scale.detach()
    return _IntegerProduct.apply(x_value, w_value, x_levels.detach(), w_levels.detach(), x_scale, w_scale)
