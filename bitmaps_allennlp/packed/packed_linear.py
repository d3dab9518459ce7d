from typing import Optional

import torch
from torch import nn

from bitmaps_allennlp import kernels
from bitmaps_allennlp.packed.bit_packing import words_per_row
from bitmaps_allennlp.packed.file_format import ACTIVATION_MODES


class PackedBinaryLinear(nn.Module):
    """
    The inference form of `BinaryLinear`: sign bits packed into 64-bit words (see `bit_packing`)
    plus one fp32 scale per output channel. With `activations="real"` it computes
    `x @ (alpha * sign(W)).T + b` exactly as the training layer does (W1A32); with
    `activations="binary"` the inputs are binarized too, XNOR-Net style (`mean|x| * sign(x)`,
    W1A1), and the product is an XNOR-popcount; with `activations="int8"` each input row is
    quantized to int8 with its absmax scale (as the training quantizer does) and multiplied by
    table lookups (W1A8).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        packed_weight: torch.Tensor,
        scale: torch.Tensor,
        bias: Optional[torch.Tensor] = None,
        activations: str = "real",
    ) -> None:
        super().__init__()
        if activations not in ACTIVATION_MODES:
            raise ValueError(f"activations must be one of {ACTIVATION_MODES}, got {activations!r}")
        if tuple(packed_weight.shape) != (out_features, words_per_row(in_features)):
            raise ValueError(
                f"packed_weight shape {tuple(packed_weight.shape)} does not match "
                f"{out_features} x {in_features}"
            )
        self.in_features = in_features
        self.out_features = out_features
        self.activations = activations
        self.register_buffer("packed_weight", packed_weight.to(torch.int64))
        self.register_buffer("scale", scale.reshape(out_features).float())
        self.register_buffer("bias", None if bias is None else bias.float())

        # the W1A8 kernels' weight layout, built on first use (not saved: derived data)
        self._lut_weight: Optional[torch.Tensor] = None

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.activations == "int8":
            if self._lut_weight is None:
                self._lut_weight = kernels.lut_weight_layout(self.packed_weight, self.in_features)
            return kernels.binary_linear_w1a8(
                inputs, self.packed_weight, self.scale, self.bias, self.in_features, self._lut_weight
            )
        kernel = kernels.binary_linear_w1a1 if self.activations == "binary" else kernels.binary_weight_linear
        return kernel(inputs, self.packed_weight, self.scale, self.bias, self.in_features)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"weight_bits=1, activations={self.activations}"
        )
