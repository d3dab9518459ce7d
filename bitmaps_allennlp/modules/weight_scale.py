"""
Scaling factors for binarized weights.

XNOR-Net / BWN (Rastegari et al., 2016): the scale that minimises ||W - alpha * sign(W)||^2 for
one output channel is alpha = mean(|W|) over that channel's inputs. `per_tensor` uses one such
alpha for the whole matrix (as BitNet does); `learned` makes alpha a parameter.
"""
from typing import Tuple

import torch

from allennlp.common.checks import ConfigurationError

WEIGHT_SCALES: Tuple[str, ...] = ("mean_abs", "per_tensor", "learned")


def check_weight_scale(weight_scale: str, key: str = "weight_scale") -> None:
    if weight_scale not in WEIGHT_SCALES:
        raise ConfigurationError(
            f"{key} must be one of {list(WEIGHT_SCALES)}, got {weight_scale!r}"
        )


def mean_abs_scale(weight: torch.Tensor) -> torch.Tensor:
    """Analytic scale, shape (out_features, 1). Gradient flows through it, which gives the exact
    XNOR-Net weight gradient dC/dW = dC/dW~ * (1/n + alpha * dsign/dW)."""
    return weight.abs().mean(dim=1, keepdim=True)


def per_tensor_scale(weight: torch.Tensor) -> torch.Tensor:
    """One mean |W| for the whole matrix, shape (1, 1)."""
    return weight.abs().mean().reshape(1, 1)
