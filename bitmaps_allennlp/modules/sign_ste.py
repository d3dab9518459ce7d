"""
Sign with a straight-through estimator (STE).

Bit convention used everywhere in Bitmaps: `sign(0) = +1`, so a binarized tensor holds exactly
two values and packs into one bit per entry (bit 1 means -1, see the export format).

The forward pass is always the sign; the estimators differ in the surrogate derivative the
backward pass uses in place of sign's (zero almost everywhere):

- `clipped`: the clipped identity, 1 for |x| <= 1 (BinaryConnect, XNOR-Net, BiBERT); latent
  values that drifted beyond +-1 stop receiving gradient.
- `tanh`: the derivative of tanh, 1 - tanh(x)^2, a smooth surrogate that never quite vanishes.
- `approx_sign`: Bi-Real Net's piecewise-quadratic ApproxSign, derivative 2 - 2|x| on |x| <= 1,
  a closer fit to sign's shape than the clipped identity.
"""
from typing import Tuple

import torch

from allennlp.common.checks import ConfigurationError

from bitmaps_allennlp.quantization.sign import binary_sign

SIGN_ESTIMATORS: Tuple[str, ...] = ("clipped", "tanh", "approx_sign")


def check_estimator(estimator: str, key: str = "estimator") -> None:
    if estimator not in SIGN_ESTIMATORS:
        raise ConfigurationError(f"{key} must be one of {list(SIGN_ESTIMATORS)}, got {estimator!r}")


def surrogate_derivative(x: torch.Tensor, estimator: str) -> torch.Tensor:
    """d sign(x) / dx as the estimator approximates it."""
    if estimator == "clipped":
        return (x.abs() <= 1).to(x.dtype)
    if estimator == "tanh":
        return 1 - torch.tanh(x) ** 2
    if estimator == "approx_sign":
        return (2 - 2 * x.abs()).clamp(min=0)
    raise ConfigurationError(f"unknown sign estimator {estimator!r}")


class _SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, estimator: str) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.estimator = estimator
        return binary_sign(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad_output * surrogate_derivative(x, ctx.estimator).to(grad_output.dtype), None


def sign_ste(x: torch.Tensor, estimator: str = "clipped") -> torch.Tensor:
    """Binarize `x` to +-1; the backward pass uses `estimator`'s surrogate derivative."""
    return _SignSTE.apply(x, estimator)
