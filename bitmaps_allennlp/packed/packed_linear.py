from typing import Optional

import torch
from torch import nn

from bitmaps_allennlp import kernels
from bitmaps_allennlp.packed.schemes import scheme_named
from bitmaps_allennlp.quantization.bit_packing import words_per_row


class PackedBinaryLinear(nn.Module):
    """
    The inference form of a binarized linear: sign bits packed into 64-bit words (see
    `quantization.bit_packing`) plus one fp32 scale per output channel, run by its packed scheme
    (`packed.schemes`): `w1a32` computes `x @ (alpha * sign(W)).T + b` exactly as the training
    layer does; `w1a1` binarizes the inputs too, XNOR-Net style (`mean|x| * sign(x)`), and
    multiplies by XNOR-popcount; `w1a8` quantizes each input row to int8 with its absmax scale
    (as the training quantizer does) and multiplies exactly in integers.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        packed_weight: torch.Tensor,
        scale: torch.Tensor,
        bias: Optional[torch.Tensor] = None,
        scheme: str = "w1a32",
        input_alpha: Optional[torch.Tensor] = None,
        input_beta: Optional[torch.Tensor] = None,
    ) -> None:
        super().__init__()
        self.scheme = scheme_named(scheme)
        if (self.scheme.front is not None) != (input_alpha is not None and input_beta is not None):
            raise ValueError(f"scheme {scheme!r} {'needs' if self.scheme.front else 'takes no'} input_alpha and input_beta")
        if tuple(packed_weight.shape) != (out_features, words_per_row(in_features)):
            raise ValueError(
                f"packed_weight shape {tuple(packed_weight.shape)} does not match "
                f"{out_features} x {in_features}"
            )
        self.in_features = in_features
        self.out_features = out_features
        self.register_buffer("packed_weight", packed_weight.to(torch.int64))
        self.register_buffer("scale", scale.reshape(out_features).float())
        self.register_buffer("bias", None if bias is None else bias.float())
        # the learned input quantizer of BiT's schemes (`front`)
        self.register_buffer("input_alpha", None if input_alpha is None else input_alpha.reshape(()).float())
        self.register_buffer("input_beta", None if input_beta is None else input_beta.reshape(()).float())

        # the native kernels' view of the buffers (with the scheme's weight layout), built on
        # first use and rebuilt when a buffer is replaced; derived data, never saved
        self._native: Optional[kernels.NativeWeights] = None
        self._native_key: Optional[tuple] = None

    def _native_weights(self) -> Optional[kernels.NativeWeights]:
        buffers = self._buffers  # not the attributes: nn.Module.__getattr__ costs a microsecond each
        weight, scale, bias = buffers["packed_weight"], buffers["scale"], buffers["bias"]
        # Replaced buffers change identity. In-place updates (load_state_dict) show through the
        # views, except in a derived layout, which is built from the weight's contents.
        derived = self.scheme.weight_layout is not None
        version = _version(weight) if derived else 0
        # W1A1's layouts exist only for the paths that read them: a switch of path rebuilds
        native = kernels.native_module() if self.scheme.weight_layout == "xnor" else None
        path_need = native is not None and (native.reads_nibble_layout(), native.reads_octet_layout())
        key = self._native_key
        if (key is None or key[0] is not weight or key[1] is not scale or key[2] is not bias or key[3] != version
                or key[4] != path_need):
            self._native_key = (weight, scale, bias, version, path_need)
            self._native = kernels.native_weights(weight, scale, bias, self.in_features, layout=self.scheme.weight_layout)
        return self._native

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.scheme.front is not None:
            return self.scheme.front(
                inputs, self.packed_weight, self.scale, self.bias, self.in_features, self.input_alpha, self.input_beta
            )
        weights = self._native_weights()
        out = None if weights is None else kernels.run_native(self.scheme.native, inputs, weights)
        if out is not None:
            return out
        return self.scheme.reference(inputs, self.packed_weight, self.scale, self.bias, self.in_features)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"scheme={self.scheme.name}"
        )


def _version(tensor: Optional[torch.Tensor]) -> int:
    """The in-place update counter; inference-mode tensors have none (-1)."""
    if tensor is None or tensor.is_inference():
        return -1
    return tensor._version


class PackedTernaryLinear(nn.Module):
    """
    The inference form of a ternary linear (BitNet b1.58, `weights: "ternary"`): the levels as two
    sign planes u, v with t = (u + v) / 2 (`quantization.bit_packing.pack_ternary`) and gamma per
    output channel. Each plane is a `PackedBinaryLinear` of the scheme's `plane_scheme` with
    scale gamma / 2, so every binary kernel path runs it; the output is their sum plus the bias.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        planes: torch.Tensor,
        scale: torch.Tensor,
        bias: Optional[torch.Tensor] = None,
        scheme: str = "w158a8",
    ) -> None:
        super().__init__()
        self.scheme = scheme_named(scheme)
        if self.scheme.plane_scheme is None or tuple(planes.shape) != (2, out_features, words_per_row(in_features)):
            raise ValueError(
                f"scheme {scheme!r} with planes of shape {tuple(planes.shape)} is not a ternary layer of "
                f"{out_features} x {in_features}"
            )
        self.in_features = in_features
        self.out_features = out_features
        half = scale.reshape(out_features).float() * 0.5
        self.planes = nn.ModuleList(
            PackedBinaryLinear(in_features, out_features, plane, half, None, scheme=self.scheme.plane_scheme)
            for plane in planes
        )
        self.register_buffer("bias", None if bias is None else bias.float())

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        out = self.planes[0](inputs) + self.planes[1](inputs)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, scheme={self.scheme.name}"
