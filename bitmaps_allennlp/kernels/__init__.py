"""
The 1-bit compute paths. Each function runs the native kernel when one is selected (see
`native.py`) and the inputs allow it (CPU float32, no gradient needed), else the pure-torch
reference, which computes the same thing and is what the tests compare against.
"""
from typing import NamedTuple, Optional

import numpy as np
import torch

from bitmaps_allennlp.kernels import reference
from bitmaps_allennlp.kernels.native import available_paths, backend, native_module, select
from bitmaps_allennlp.quantization.bit_packing import pack_signs as reference_pack_signs
from bitmaps_allennlp.quantization.bit_packing import words_per_row
from bitmaps_allennlp.quantization.int8 import quantize_int8_rows as reference_quantize_int8_rows


def _native_for(*tensors: torch.Tensor):
    native = native_module()
    if native is None:
        return None
    for tensor in tensors:
        if tensor.device.type != "cpu" or tensor.requires_grad:
            return None
    return native


def _words(packed: torch.Tensor) -> np.ndarray:
    return packed.contiguous().numpy().view(np.uint64)


def _floats(tensor: Optional[torch.Tensor]) -> Optional[np.ndarray]:
    return None if tensor is None else tensor.detach().float().contiguous().numpy()


def pack_signs(values: torch.Tensor) -> torch.Tensor:
    """`(rows, K)` -> `(rows, ceil(K/64))` int64 words (the layout of `bit_packing`)."""
    native = _native_for(values)
    if native is None or values.dtype != torch.float32 or values.dim() != 2:
        return reference_pack_signs(values)
    out = torch.empty(values.size(0), words_per_row(values.size(1)), dtype=torch.int64)
    native.pack_signs(values.contiguous().numpy(), out.numpy().view(np.uint64), None)
    return out


def quantize_int8_rows(inputs: torch.Tensor) -> "tuple[torch.Tensor, torch.Tensor]":
    """`(rows, K)` float32 -> the int8 levels `q` (as float32) and each row's `step`, shape
    `(rows, 1)`, computed by the selected path's quantizer (`quantization.int8` defines it)."""
    native = _native_for(inputs)
    if native is None or inputs.dtype != torch.float32 or inputs.dim() != 2 or inputs.size(1) == 0:
        return reference_quantize_int8_rows(inputs)
    q = np.empty(tuple(inputs.shape), dtype=np.int8)
    step = np.empty(inputs.size(0), dtype=np.float32)
    native.quantize_int8_rows(inputs.contiguous().numpy(), q, step)
    return torch.from_numpy(q).float(), torch.from_numpy(step)[:, None]


def xnor_popcount_dot(packed_a: torch.Tensor, packed_b: torch.Tensor, in_features: int) -> torch.Tensor:
    """`(M, W) x (N, W)` packed +-1 rows -> `(M, N)` int32 dot products."""
    native = _native_for(packed_a, packed_b)
    if native is None:
        return reference.xnor_popcount_dot(packed_a, packed_b, in_features).to(torch.int32)
    out = torch.empty(packed_a.size(0), packed_b.size(0), dtype=torch.int32)
    native.xnor_gemm(_words(packed_a), _words(packed_b), in_features, out.numpy(), torch.get_num_threads())
    return out


class NativeWeights(NamedTuple):
    """A packed layer's operands as the native kernels take them, built once per layer
    (`native_weights`): numpy views sharing the tensors' memory, so the per-call cost is the
    input's conversion alone. `layout` is a derived weight layout, present when asked for: W1A8's
    table-lookup layout (`"lut"`), which its entry point takes instead of `words`; W1A1's layout
    for the path in use (`"xnor"`: the nibble layout of csrc/xnor_lut.h where the path looks up
    tables, column octets of csrc/kernels.h where it has AVX-512 popcounts) or W1A32's panels
    (`"panels"`, csrc/linear.h), which their entry points take beside them (`beside`): the other
    paths read the W1A1 words (for them no layout is built: `layout` stays None), and W1A32 below
    16 rows flips signs on the words."""

    words: np.ndarray
    alpha: np.ndarray
    bias: Optional[np.ndarray]
    in_features: int
    out_features: int
    layout: Optional[np.ndarray] = None
    beside: bool = False


def native_weights(
    packed_weight: torch.Tensor,
    scale: torch.Tensor,
    bias: Optional[torch.Tensor],
    in_features: int,
    layout: Optional[str] = None,
) -> Optional[NativeWeights]:
    """The native kernels' view of a packed layer, or None when they do not apply (no
    extension, or tensors not on the CPU). Holds views: in-place updates of the tensors show
    through; replacing them (`.to()`, a new buffer) needs a new `NativeWeights`."""
    native = _native_for(packed_weight, scale)
    if native is None or packed_weight.dim() != 2 or (bias is not None and bias.device.type != "cpu"):
        return None
    words = _words(packed_weight)
    derived = None
    if layout == "lut":
        n = packed_weight.size(0)
        # 32-column blocks x (16 groups of 4 bits per word) x 16 bytes (csrc/int8_lut.h)
        derived = np.empty(((n + 31) // 32, words_per_row(in_features) * 16 * 16), dtype=np.uint8)
        native.lut_weight_layout(words, in_features, derived)
    elif layout == "xnor" and native.reads_nibble_layout():
        n = packed_weight.size(0)
        # 32-column blocks x (16 groups of 4 bits per word) x 32 bytes, one nibble each (csrc/xnor_lut.h)
        derived = np.empty(((n + 31) // 32, words_per_row(in_features) * 16 * 32), dtype=np.uint8)
        native.xnor_nibble_layout(words, in_features, derived)
    elif layout == "xnor" and native.reads_octet_layout():
        n = packed_weight.size(0)
        # groups of 8 columns x (each word of the 8 side by side) (csrc/kernels.h, to_column_groups)
        derived = np.empty(((n + 7) // 8, words_per_row(in_features) * 8), dtype=np.uint64)
        native.xnor_octet_layout(words, in_features, derived)
    elif layout == "panels":
        n = packed_weight.size(0)
        # 16-channel panels x in_features, bit j of entry (g, t) = sign bit t of channel 16g + j (csrc/linear.h)
        derived = np.empty(((n + 15) // 16, in_features), dtype=np.uint16)
        native.panel_layout(words, in_features, derived)
    elif layout not in (None, "xnor"):
        raise ValueError(f"unknown native weight layout {layout!r}")
    return NativeWeights(
        words, _floats(scale), _floats(bias), in_features, packed_weight.size(0), derived, layout in ("xnor", "panels")
    )


def run_native(kernel: str, inputs: torch.Tensor, weights: NativeWeights) -> Optional[torch.Tensor]:
    """`kernel` ("binary_weight_linear", "binary_linear_w1a1" or "binary_linear_w1a8") on
    `(..., in_features)` inputs, or None when the inputs need the reference (gradients, another
    device or dtype) or no native path is selected."""
    if not inputs.is_cpu or inputs.requires_grad or inputs.dtype != torch.float32 or native_module() is None:
        return None
    # at M=1 a layer takes a few microseconds: each avoidable tensor operation here shows
    flat = inputs.dim() != 2
    x = inputs.reshape(-1, weights.in_features) if flat else inputs
    if not x.is_contiguous():
        x = x.contiguous()
    out = np.empty((x.size(0), weights.out_features), dtype=np.float32)
    if x.size(0):
        fn, threads = getattr(native_module(), kernel), torch.get_num_threads()
        if weights.beside:
            fn(x.numpy(), weights.words, weights.alpha, weights.bias, out, threads, weights.layout)
        else:
            operand = weights.words if weights.layout is None else weights.layout
            fn(x.numpy(), operand, weights.alpha, weights.bias, out, threads)
    result = torch.from_numpy(out)
    return result.reshape(*inputs.shape[:-1], weights.out_features) if flat else result


def _packed_linear(kernel: str, reference_fn, inputs, packed_weight, scale, bias, in_features, weights=None, layout=None):
    if weights is None and _native_for(inputs) is not None:
        weights = native_weights(packed_weight, scale, bias, in_features, layout=layout)
    out = None if weights is None else run_native(kernel, inputs, weights)
    return reference_fn(inputs, packed_weight, scale, bias, in_features) if out is None else out


def binary_weight_linear(
    inputs: torch.Tensor,
    packed_weight: torch.Tensor,
    scale: torch.Tensor,
    bias: Optional[torch.Tensor],
    in_features: int,
    weights: Optional[NativeWeights] = None,
) -> torch.Tensor:
    """Binary weights (W1), real activations: `inputs @ (scale * signs).T + bias`. Pass the
    layer's `native_weights` to skip converting the operands on every call."""
    return _packed_linear(
        "binary_weight_linear", reference.binary_weight_linear, inputs, packed_weight, scale, bias, in_features, weights
    )


def binary_linear_w1a1(
    inputs: torch.Tensor,
    packed_weight: torch.Tensor,
    scale: torch.Tensor,
    bias: Optional[torch.Tensor],
    in_features: int,
    weights: Optional[NativeWeights] = None,
) -> torch.Tensor:
    """Binary weights and binary activations (XNOR-Net): each input row becomes
    `mean|x| * sign(x)`, then `beta_i * alpha_j * (K - 2 popcount(x_i xor w_j)) + b_j`, by table
    lookup or on column octets where the path has them (pass `native_weights(..., layout="xnor")` to
    build the weight layout once)."""
    return _packed_linear(
        "binary_linear_w1a1", reference.binary_linear_w1a1, inputs, packed_weight, scale, bias, in_features, weights,
        "xnor",
    )


def binary_linear_w1a8(
    inputs: torch.Tensor,
    packed_weight: torch.Tensor,
    scale: torch.Tensor,
    bias: Optional[torch.Tensor],
    in_features: int,
    weights: Optional[NativeWeights] = None,
) -> torch.Tensor:
    """Binary weights, int8 activations (absmax per row), exact: table lookups or VNNI int8
    products when built (pass `native_weights(..., layout="lut")` to build the weight layout
    once), else the reference."""
    return _packed_linear(
        "binary_linear_w1a8", reference.binary_linear_w1a8, inputs, packed_weight, scale, bias, in_features, weights, "lut"
    )


def _xnor_linear(levels: torch.Tensor, packed_weight, in_features: int) -> torch.Tensor:
    """`(..., K)` +-1 levels against packed weights: exact integer dot products, as float32."""
    flat = levels.reshape(-1, in_features)
    dots = xnor_popcount_dot(pack_signs(flat.contiguous()), packed_weight, in_features).float()
    return dots.reshape(*levels.shape[:-1], packed_weight.size(0))


def binary_linear_elastic(inputs, packed_weight, scale, bias, in_features, alpha, beta) -> torch.Tensor:
    """BiT's elastic binary inputs against binary weights: the levels sign((x - beta) / alpha)
    packed and multiplied by XNOR-popcount (the native pack and GEMM of the selected path), then
    `dots * (alpha * scale) + bias`."""
    if inputs.requires_grad or _native_for(inputs) is None:
        return reference.binary_linear_elastic(inputs, packed_weight, scale, bias, in_features, alpha, beta)
    levels = reference.elastic_levels(inputs, alpha, beta, signed=True)
    out = _xnor_linear(levels, packed_weight, in_features) * (scale * alpha)
    return out if bias is None else out + bias


def binary_linear_two_set(inputs, packed_weight, scale, bias, in_features, alpha, beta) -> torch.Tensor:
    """BiT's two-set inputs alpha * b, b in {0, 1}, against binary weights w: with s = 2b - 1 in
    {-1, +1}, sum_k b_k w_k = (sum_k s_k w_k + sum_k w_k) / 2, both XNOR-popcount products (the
    second is an all-(+1) row's), exact in integers."""
    if inputs.requires_grad or _native_for(inputs) is None:
        return reference.binary_linear_two_set(inputs, packed_weight, scale, bias, in_features, alpha, beta)
    bits = reference.elastic_levels(inputs, alpha, beta, signed=False)
    dots = _xnor_linear(2 * bits - 1, packed_weight, in_features)
    row_sums = _xnor_linear(torch.ones(1, in_features), packed_weight, in_features)
    out = (dots + row_sums) * 0.5 * (scale * alpha)
    return out if bias is None else out + bias


__all__ = [
    "available_paths",
    "backend",
    "select",
    "pack_signs",
    "quantize_int8_rows",
    "xnor_popcount_dot",
    "binary_weight_linear",
    "binary_linear_w1a1",
    "binary_linear_w1a8",
    "binary_linear_elastic",
    "binary_linear_two_set",
    "NativeWeights",
    "native_weights",
    "run_native",
]
