from typing import Optional, Tuple

import torch
from torch import nn

from bitmaps_allennlp import kernels
from bitmaps_allennlp.packed.schemes import scheme_named

# the buffers a packed layer's native form is built from, in `kernels.native_layer`'s order
_BUFFERS = ("packed_weight", "scale", "bias", "input_alpha", "input_beta")


class PackedLinear(nn.Module):
    """
    The inference form of a quantized linear, stored as its packed scheme (`packed.schemes`)
    stores it: sign words (`quantization.bit_packing`; ternary weights as two sign planes u, v with
    t = (u + v) / 2), one fp32 scale per output channel (ternary: gamma), the optional bias and,
    for BiT's schemes, the learned input quantizer (`input_alpha`, `input_beta`).

    With the native extension it runs through the C++ core's `run_linear` (`kernels.native_layer`),
    the code the torch-free encoder runs for each of its linears: one implementation of every
    scheme (the fused ternary product, BiT's 1-bit fronts). Without it, or where the kernels do not
    apply (gradients, another device or dtype), it runs the scheme's pure-torch reference, which
    the tests hold the kernels to: `w1a32` computes `x @ (alpha * sign(W)).T + b` as the training
    layer does; `w1a1` binarizes the inputs too, XNOR-Net style (`mean|x| * sign(x)`); `w1a8`
    quantizes each input row to int8 with its absmax scale and multiplies exactly in integers.
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
        roles = {spec.role: spec for spec in self.scheme.tensors}
        if ("input_alpha" in roles) != (input_alpha is not None and input_beta is not None):
            raise ValueError(f"scheme {scheme!r} {'needs' if 'input_alpha' in roles else 'takes no'} input_alpha and input_beta")
        expected = roles["packed_weight"].shape(in_features, out_features)
        if tuple(packed_weight.shape) != expected:
            raise ValueError(
                f"scheme {scheme!r}: packed_weight of shape {tuple(packed_weight.shape)} is not a layer of "
                f"{out_features} x {in_features} (expected {expected})"
            )
        self.in_features = in_features
        self.out_features = out_features
        self.register_buffer("packed_weight", packed_weight.to(torch.int64))
        self.register_buffer("scale", scale.reshape(out_features).float())
        self.register_buffer("bias", None if bias is None else bias.float())
        self.register_buffer("input_alpha", None if input_alpha is None else input_alpha.reshape(()).float())
        self.register_buffer("input_beta", None if input_beta is None else input_beta.reshape(()).float())
        # the layer in the native core, built on first use and rebuilt when a buffer is replaced
        # or updated in place (derived data: its weight layouts and epilogue scales are computed
        # from the contents); never saved, never copied
        self._native = None
        self._native_key: Optional[Tuple] = None

    def _native_layer(self):
        buffers = self._buffers  # not the attributes: nn.Module.__getattr__ costs a microsecond each
        key = self._native_key
        # at M=1 a layer takes a few microseconds, so this check is spelled out: the buffers
        # compared one by one (in _BUFFERS' order) and the version counters read in one
        # comprehension took 1.3-1.6 us on Ice Lake where map() over _BUFFERS and
        # operator.attrgetter had taken 2.3-2.4. The key holds
        # the buffers and the version counters of those that have one: an inference tensor (a buffer
        # made or replaced in inference mode) has none, and asking for it raises, which had cost
        # 11 us a call
        held = key[0] if key is not None else None
        if (
            held is None
            or buffers["packed_weight"] is not held[0]
            or buffers["scale"] is not held[1]
            or buffers["bias"] is not held[2]
            or buffers["input_alpha"] is not held[3]
            or buffers["input_beta"] is not held[4]
            or [t._version for t in key[1]] != key[2]
        ):
            tensors = [buffers[name] for name in _BUFFERS]
            counted = [t for t in tensors if t is not None and not t.is_inference()]
            self._native_key = (tensors, counted, [t._version for t in counted])
            self._native = kernels.native_layer(self.scheme.native_id, self.in_features, self.out_features, *tensors)
        return self._native

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if kernels.native_applies(inputs):
            layer = self._native_layer()
            if layer is not None:
                return kernels.run_layer(layer, inputs, self.in_features, self.out_features)
        args = (inputs, self.packed_weight, self.scale, self.bias, self.in_features)
        if self.input_alpha is not None:
            args += (self.input_alpha, self.input_beta)
        return self.scheme.reference(*args)

    def __getstate__(self):
        # copies and pickles leave the native layer behind (a capsule; rebuilt on first use)
        return {**super().__getstate__(), "_native": None, "_native_key": None}

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, scheme={self.scheme.name}"

