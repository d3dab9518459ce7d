"""
Quantizers for the activations that flow into a binarized linear or an attention matmul.

- `real`: full precision (W1A32 when the weights are binary).
- `int8`: symmetric absmax per token, x~ = round(x * 127 / max|x|) * max|x| / 127 (BitNet b1.58,
  LLM.int8's vector-wise scheme; the float32 operations as `quantization.int8` defines them);
  identity gradient through the rounding.
- `sign`: XNOR-Net's 1-bit activation, x~ = mean|x| * sign(x) with one scale per token (over
  the last dimension), which is what the packed W1A1 kernels compute (`bitmaps-export`).
- `elastic`: BiT's elastic binarization for signed inputs, x~ = alpha * sign((x - beta) / alpha)
  with learned scalars alpha and beta.
- `two_set`: BiT's {0, alpha} binarization for non-negative inputs (post-GELU values, attention
  probabilities): x~ = alpha * round(clip((x - beta) / alpha, 0, 1)), learned alpha and beta.

The learned quantizers use the gradients BiT derives (the LSQ-style straight-through rule):
inside the clipping range d x~/dx = 1, d x~/d beta = -1, d x~/d alpha = q - (x - beta)/alpha;
outside it only alpha gets gradient (through q). alpha and beta are initialised from the first
batch they see (signed: alpha = mean |x|, the L2-optimal 1-bit scale; two-set: alpha = 2 mean x,
so inputs above their mean map to alpha).
"""
from typing import Tuple

import torch
import torch.distributed as dist
from torch import nn

from allennlp.common import Registrable
from allennlp.common.checks import ConfigurationError
from bitmaps_runtime.formats import ACTIVATION_MODES, ONE_BIT_ACTIVATIONS  # noqa: F401 (the one vocabulary)

from bitmaps_allennlp.modules.sign_ste import sign_ste
from bitmaps_allennlp.quantization.int8 import fake_quantize_int8_parts, fake_quantize_int8_rows
from bitmaps_allennlp.quantization.sign import binary_sign


_EPSILON = 1e-5


def check_activation_mode(mode: str, key: str = "activations") -> None:
    if mode not in ACTIVATION_MODES:
        raise ConfigurationError(f"{key} must be one of {list(ACTIVATION_MODES)}, got {mode!r}")


class ActivationQuantizer(nn.Module, Registrable):
    """
    The quantizer in front of a binarized linear or an attention product, registered by its mode
    (`ACTIVATION_MODES`, the one vocabulary the training knobs, the packed schemes, the file and the
    C++ runtime use): `ActivationQuantizer.build(mode, estimator)` makes one. Each subclass is
    registered where it is defined; `mode` is its registered name, which the export reads to pick
    the packed scheme (`packed.schemes.scheme_for(weights, mode)`).
    """

    default_implementation = "real"
    mode = "real"
    # outputs are 1-bit levels times scales (the kernels pack them): see `parts`
    one_bit = False

    @classmethod
    def build(cls, mode: str, estimator: str = "clipped", key: str = "activations") -> "ActivationQuantizer":
        check_activation_mode(mode, key)
        return cls.by_name(mode)(estimator=estimator)


@ActivationQuantizer.register("real")
class RealActivation(ActivationQuantizer):
    """Full precision: the identity."""

    def __init__(self, estimator: str = "clipped") -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@ActivationQuantizer.register("int8")
class Int8AbsMax(ActivationQuantizer):
    """Per-token (last dimension) symmetric 8-bit quantization, exactly as the packed W1A8
    kernels compute it (`bitmaps_allennlp.quantization.int8`)."""

    mode = "int8"

    def __init__(self, estimator: str = "clipped") -> None:
        super().__init__()

    def integer_parts(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`(value, levels, step)`: `q * step` with the identity gradient, the levels q in
        [-127, 127] and each token's step, shape (..., 1)."""
        return fake_quantize_int8_parts(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fake_quantize_int8_rows(x)


@ActivationQuantizer.register("sign")
class SignActivation(ActivationQuantizer):
    """mean |x| * sign(x) per token; the gradient flows through the scale and the sign's STE."""

    mode = "sign"
    one_bit = True

    def __init__(self, estimator: str = "clipped") -> None:
        super().__init__()
        self.estimator = estimator

    def parts(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The +-1 levels (with the sign's STE) and the per-token scale mean|x|, shape (..., 1)."""
        return sign_ste(x, self.estimator), x.abs().mean(dim=-1, keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels, scale = self.parts(x)
        return scale * levels

    def extra_repr(self) -> str:
        return f"estimator={self.estimator}"


class ElasticBinarizer(ActivationQuantizer):
    """
    BiT's elastic binarization (Liu et al., 2022), one learned (alpha, beta) per module.

    # Parameters

    signed : `bool`
        `True`: values {-alpha, +alpha}; `False`: values {0, alpha} (the `two_set` mode).
    """

    one_bit = True

    def __init__(self, signed: bool, estimator: str = "clipped") -> None:
        super().__init__()
        self.signed = signed
        self.mode = "elastic" if signed else "two_set"
        self.alpha = nn.Parameter(torch.ones(()))
        self.beta = nn.Parameter(torch.zeros(()))
        # persisted, so a restored model keeps its trained alpha instead of re-initialising
        self.register_buffer("initialized", torch.tensor(False))

    def _initialize(self, x: torch.Tensor) -> None:
        with torch.no_grad():
            x = x.detach().float()
            alpha = x.abs().mean() if self.signed else 2 * x.clamp(min=0).mean()
            if dist.is_available() and dist.is_initialized():
                # every DDP worker sees another first batch, and DDP averages gradients only:
                # the workers start from the mean of their estimates, or their models diverge
                alpha = alpha.reshape(1)
                dist.all_reduce(alpha)
                alpha = alpha / dist.get_world_size()
            self.alpha.fill_(float(alpha.clamp(min=_EPSILON)))
            self.beta.zero_()
            self.initialized.fill_(True)

    def parts(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The levels (+-1, or {0, 1} for two-set; exactly, with BiT's straight-through gradient
        through the clipped input) and the scale alpha; the quantized input is their product."""
        if not bool(self.initialized):
            self._initialize(x)
        alpha = self.effective_alpha()
        scaled = (x - self.beta) / alpha
        if self.signed:
            clipped = scaled.clamp(-1, 1)
            levels = binary_sign(scaled)
        else:
            clipped = scaled.clamp(0, 1)
            levels = clipped.round()
        # levels + (c - c) is the levels exactly (c + (levels - c) is not always), and its
        # gradient is the clipped input's
        return levels.detach() + (clipped - clipped.detach()), alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels, alpha = self.parts(x)
        return alpha * levels

    def effective_alpha(self) -> torch.Tensor:
        """The scale the forward pass uses (and a packed model stores): |alpha|, kept from 0."""
        return self.alpha.abs().clamp(min=_EPSILON)

    def extra_repr(self) -> str:
        return f"signed={self.signed}"


@ActivationQuantizer.register("elastic")
class ElasticActivation(ElasticBinarizer):
    """BiT's elastic binarization of signed inputs: alpha * sign((x - beta) / alpha)."""

    def __init__(self, estimator: str = "clipped") -> None:
        super().__init__(signed=True)


@ActivationQuantizer.register("two_set")
class TwoSetActivation(ElasticBinarizer):
    """BiT's {0, alpha} binarization of non-negative inputs (post-GELU, attention weights)."""

    def __init__(self, estimator: str = "clipped") -> None:
        super().__init__(signed=False)


def build_activation_quantizer(mode: str, estimator: str = "clipped") -> ActivationQuantizer:
    """`ActivationQuantizer.build`, under the name the modules import."""
    return ActivationQuantizer.build(mode, estimator)
