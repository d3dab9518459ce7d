"""
How the forward pass turns a latent full-precision weight matrix into the low-bit one.

- `binary`: W~ = alpha * sign(W - c), one bit per weight plus a scale per output channel (or one
  per tensor). `c` is the row mean when centering (BiBERT, BiT: balances the signs, which
  maximises the information a 1-bit weight carries), else 0.
- `ternary`: BitNet b1.58's absmean quantizer, W~ = gamma * clip(round(W / gamma), -1, 1) with
  gamma = mean |W| (per tensor by default in the recipes), 1.58 bits per weight.
- `int8`: absmax int8 per row (`quantization.int8`, the rule the packed `int8` table format
  stores), for embedding tables only: trained this way, a table exports to 8 bits without any
  rounding the model has not seen (a W1A1 model's perplexity moves by a percent under the
  rounding of its input tables alone; README, packed parity).

The latent weight is what the optimizer updates (BinaryConnect); gradients reach it through the
chosen sign estimator (binary) or the identity (ternary and int8 rounding).
"""
from typing import TYPE_CHECKING, Tuple

import torch
from torch import nn

from allennlp.common.checks import ConfigurationError

from bitmaps_allennlp.modules.sign_ste import check_estimator, sign_ste
from bitmaps_allennlp.modules.weight_scale import check_weight_scale, mean_abs_scale, per_tensor_scale
from bitmaps_allennlp.quantization.int8 import fake_quantize_int8_rows

if TYPE_CHECKING:  # component_quantization imports this module's checks
    from bitmaps_allennlp.modules.component_quantization import ComponentQuantization

WEIGHT_MODES: Tuple[str, ...] = ("binary", "ternary", "int8")
# the modes a linear (and the head's transform) can take: each has a packed scheme
LINEAR_WEIGHT_MODES: Tuple[str, ...] = ("binary", "ternary")

# keeps ternary rounding finite for an all-zero matrix
_EPSILON = 1e-8


# the weight modes whose levels are -1, 0 or +1 (`integer_parts`)
INTEGER_LEVEL_WEIGHTS = ("binary", "ternary")


def check_weight_mode(weights: str, key: str = "weights") -> None:
    if weights not in WEIGHT_MODES:
        raise ConfigurationError(f"{key} must be one of {list(WEIGHT_MODES)}, got {weights!r}")


class WeightQuantizer(nn.Module):
    """
    # Parameters

    out_features : `int`
        Rows of the weight matrix (the size of a learned per-channel scale).
    weights : `str`, optional (default = `"binary"`)
        `"binary"`, `"ternary"` or `"int8"` (absmax per row; `weight_scale` and centering do not
        apply).
    weight_scale : `str`, optional (default = `"mean_abs"`)
        `"mean_abs"` (per output channel, recomputed every step), `"per_tensor"`, or `"learned"`
        (a per-channel parameter, initialised from mean |W| on the first forward pass, so that it
        starts from whatever weights were loaded into the layer).
    center_weights : `bool`, optional (default = `False`)
        Subtract each row's mean before taking the sign (binary only).
    estimator : `str`, optional (default = `"clipped"`)
        The sign's straight-through estimator (`sign_ste.SIGN_ESTIMATORS`).
    """

    def __init__(
        self,
        out_features: int,
        weights: str = "binary",
        weight_scale: str = "mean_abs",
        center_weights: bool = False,
        estimator: str = "clipped",
    ) -> None:
        super().__init__()
        check_weight_mode(weights)
        check_weight_scale(weight_scale)
        check_estimator(estimator)
        if weights != "binary" and center_weights:
            raise ConfigurationError(f"center_weights applies to binary weights, not {weights}")
        if weights == "int8" and weight_scale != "mean_abs":
            raise ConfigurationError(f"int8 weights take one absmax step per row; weight_scale {weight_scale!r} does not apply")
        self.weights = weights
        self.weight_scale = weight_scale
        self.center_weights = center_weights
        self.estimator = estimator
        self.scale = None
        if weight_scale == "learned":
            self.scale = nn.Parameter(torch.ones(out_features, 1))
            # persisted, so a restored model keeps its trained scale instead of re-initialising
            self.register_buffer("scale_initialized", torch.tensor(False))

    @classmethod
    def for_component(cls, out_features: int, quantization: "ComponentQuantization") -> "WeightQuantizer":
        return cls(
            out_features,
            weights=quantization.weights,
            weight_scale=quantization.weight_scale,
            center_weights=quantization.center_weights,
            estimator=quantization.estimator,
        )

    def centered(self, weight: torch.Tensor) -> torch.Tensor:
        return weight - weight.mean(dim=1, keepdim=True) if self.center_weights else weight

    def scale_of(self, weight: torch.Tensor) -> torch.Tensor:
        """The scale the forward pass uses, shape (out_features, 1) or (1, 1)."""
        if self.scale is not None:
            if not bool(self.scale_initialized):
                with torch.no_grad():
                    self.scale.copy_(mean_abs_scale(self.centered(weight)))
                    self.scale_initialized.fill_(True)
            return self.scale
        if self.weight_scale == "per_tensor":
            return per_tensor_scale(self.centered(weight))
        return mean_abs_scale(self.centered(weight))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.weights == "int8":
            return fake_quantize_int8_rows(weight)
        return self.integer_parts(weight)[0]

    def integer_parts(self, weight: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Binary or ternary weights as `(value, levels, scale)`: the weight the forward pass uses
        (with its straight-through gradient), its levels in {-1, +1} or {-1, 0, +1}, and its
        scale, (out_features, 1) or (1, 1); the value is levels times scale."""
        if self.weights not in INTEGER_LEVEL_WEIGHTS:
            raise ConfigurationError(f"{self.weights} weights have no +-1 or ternary levels")
        if self.weights == "ternary":
            levels, gamma = self._ternary_levels(weight, self.scale_of(weight))
            # identity gradient through the rounding (BitNet's STE)
            return weight + (levels * gamma - weight).detach(), levels, gamma
        levels, scale = self.binary_levels(weight)
        return scale * levels, levels, scale

    def binary_levels(self, weight: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The +-1 levels (with the sign's STE) and the scale, (out_features, 1) or (1, 1), of
        binary weights: the weight the forward pass uses is their product."""
        return sign_ste(self.centered(weight), self.estimator), self.scale_of(weight)

    @staticmethod
    def _ternary_levels(weight: torch.Tensor, scale: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        gamma = scale.clamp(min=_EPSILON)
        return (weight / gamma).round().clamp(-1, 1), gamma

    def ternary_parts(self, weight: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """What a packed ternary file stores: the levels in {-1, 0, +1}, shape (out, in), and
        gamma per output channel, shape (out_features,)."""
        if self.weights != "ternary":
            raise ConfigurationError(f"{self.weights} weights have no ternary packed form")
        levels, gamma = self._ternary_levels(weight.detach(), self.scale_of(weight).detach())
        return levels, gamma.expand(weight.size(0), 1).reshape(-1)

    def binary_parts(self, weight: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """What a packed 1-bit file stores: the values whose signs are the bits, and the scale
        per output channel, shape (out_features,)."""
        if self.weights != "binary":
            raise ConfigurationError(f"{self.weights} weights have no 1-bit packed form")
        scale = self.scale_of(weight).detach().expand(weight.size(0), 1).reshape(-1)
        return self.centered(weight).detach(), scale

    def extra_repr(self) -> str:
        return (
            f"weights={self.weights}, weight_scale={self.weight_scale}, "
            f"center_weights={self.center_weights}, estimator={self.estimator}"
        )
