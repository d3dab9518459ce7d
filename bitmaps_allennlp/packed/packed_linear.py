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

        # the native kernels' view of the buffers (with the W1A8 weight layout), built on first
        # use and rebuilt when a buffer is replaced; derived data, never saved
        self._native: Optional[kernels.NativeWeights] = None
        self._native_key: Optional[tuple] = None

    _KERNELS = {
        "real": ("binary_weight_linear", kernels.binary_weight_linear),
        "binary": ("binary_linear_w1a1", kernels.binary_linear_w1a1),
        "int8": ("binary_linear_w1a8", kernels.binary_linear_w1a8),
    }

    def _native_weights(self) -> Optional[kernels.NativeWeights]:
        buffers = self._buffers  # not the attributes: nn.Module.__getattr__ costs a microsecond each
        weight, scale, bias = buffers["packed_weight"], buffers["scale"], buffers["bias"]
        # Replaced buffers change identity. In-place updates (load_state_dict) show through the
        # views, except in the W1A8 layout, which is derived from the weight's contents.
        version = _version(weight) if self.activations == "int8" else 0
        key = self._native_key
        if key is None or key[0] is not weight or key[1] is not scale or key[2] is not bias or key[3] != version:
            self._native_key = (weight, scale, bias, version)
            self._native = kernels.native_weights(weight, scale, bias, self.in_features, with_lut=self.activations == "int8")
        return self._native

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        name, kernel = self._KERNELS[self.activations]
        weights = self._native_weights()
        out = None if weights is None else kernels.run_native(name, inputs, weights)
        if out is not None:
            return out
        return kernel(inputs, self.packed_weight, self.scale, self.bias, self.in_features)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"weight_bits=1, activations={self.activations}"
        )


def _version(tensor: Optional[torch.Tensor]) -> int:
    """The in-place update counter; inference-mode tensors have none (-1)."""
    if tensor is None or tensor.is_inference():
        return -1
    return tensor._version
