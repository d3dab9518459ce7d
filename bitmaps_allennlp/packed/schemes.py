"""
The packed schemes: one row for each way a trained linear layer is stored and run, in the style
of ggml's type traits. The torch-free half of each row (name, C++ id, training knobs, bits, the
tensors it stores) is `bitmaps_runtime.formats.SCHEME_SPECS`, which the file reader and the C++
runtime read; this module adds the torch half (how a trained layer is packed, the pure-torch
reference) and is what the export, the loader, `PackedLinear`, the benchmarks and README read.

A scheme's name is the one name used everywhere, the file included (`linears.<name>.scheme`).

Adding a scheme is one row in `SCHEME_SPECS` and one here, plus its kernels (a reference function
in `kernels/reference.py`, native kernels in `runtime/csrc/` on every path, and its case in
`run_linear`, `runtime/csrc/linear.cpp`, which both engines run) and their tests; README ("Packed schemes") walks through it with
W1A8 as the worked example.
"""
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import torch

from bitmaps_runtime.formats import (  # noqa: F401 (BIAS re-exported)
    BIAS,
    SCHEME_SPECS,
    TABLE_COLUMN_EXPONENT,
    TABLE_GROUP,
    TABLE_SPECS,
    TensorSpec,
    table_groups,
)

from bitmaps_allennlp.kernels import reference
from bitmaps_allennlp.quantization.bit_packing import pack_signs, pack_ternary, unpack_signs
from bitmaps_allennlp.quantization.int8 import quantize_int8_rows


@dataclass(frozen=True)
class PackedScheme:
    """
    name : the scheme's one name (file, export, loader, kernels, README).
    weights, activations : the training knobs (`bitmaps_binary_bert`) it is exported from.
    bits_per_weight : stored bits per weight, scales excluded.
    tensors : what the file holds per linear (the optional `bias` is common to all schemes).
    pack : the trained layer (`QuantizedLinear`) -> the arrays of `tensors`, by role.
    reference : the pure-torch kernel, `(inputs, packed_weight, scale, bias, in_features)`, plus
        `(input_alpha, input_beta)` for BiT's schemes, which store a learned input quantizer.
    native_id : its case in the C++ core's `run_linear` (runtime/csrc/linear.h, `Scheme`), which
        both engines run: the torch-free encoder and the packed modules (`kernels.native_layer`).
    summary : one line for README and error messages.
    plane_scheme : for weights stored as sign planes (ternary), the binary scheme each plane is
        stored as; `None` for a scheme that stores one plane of words.
    """

    name: str
    weights: str
    activations: str
    bits_per_weight: float
    tensors: Tuple[TensorSpec, ...]
    pack: Callable[[torch.nn.Module, torch.Tensor], Dict[str, np.ndarray]]
    reference: Callable[..., torch.Tensor]
    native_id: int
    summary: str
    plane_scheme: Optional[str] = None

    @property
    def learned_inputs(self) -> bool:
        """Whether it stores a learned input quantizer (BiT's `input_alpha`, `input_beta`)."""
        return any(spec.role == "input_alpha" for spec in self.tensors)


def _pack_binary(layer: torch.nn.Module) -> Dict[str, np.ndarray]:
    """Sign bits of the (centred) latent weight, one fp32 scale per output channel (a per-tensor
    scale is repeated). `layer` is a `QuantizedLinear` or `QuantizedEmbedding`."""
    signs, scale = layer.weight_quantizer.binary_parts(layer.weight)
    return {
        "packed_weight": pack_signs(signs.cpu()).numpy().view(np.uint64),
        "scale": scale.float().cpu().numpy(),
    }


def _pack_ternary(layer: torch.nn.Module) -> Dict[str, np.ndarray]:
    """Two sign planes of the levels (`quantization.bit_packing.pack_ternary`) and gamma per
    output channel (a per-tensor gamma is repeated)."""
    levels, gamma = layer.weight_quantizer.ternary_parts(layer.weight)
    return {
        "packed_weight": pack_ternary(levels.cpu()).numpy().view(np.uint64),
        "scale": gamma.float().cpu().numpy(),
    }


def _pack_binary_elastic(layer: torch.nn.Module) -> Dict[str, np.ndarray]:
    """The binary weight, and the input quantizer's learned alpha (as used: |alpha|) and beta."""
    quantizer = layer.input_quantizer
    return {
        **_pack_binary(layer),
        "input_alpha": quantizer.effective_alpha().detach().float().reshape(1).cpu().numpy(),
        "input_beta": quantizer.beta.detach().float().reshape(1).cpu().numpy(),
    }


def _row(name: str, pack, reference_fn, summary: str) -> PackedScheme:
    """The scheme `name`: its torch-free facts from `SCHEME_SPECS`, its torch side from the arguments."""
    spec = SCHEME_SPECS[name]
    return PackedScheme(
        spec.name, spec.weights, spec.activations, spec.bits_per_weight, spec.tensors, pack, reference_fn, spec.native_id,
        summary, spec.plane_scheme,
    )


SCHEMES: Dict[str, PackedScheme] = {
    scheme.name: scheme
    for scheme in (
        _row("w1a32", _pack_binary, reference.binary_weight_linear,
             "binary weights, fp32 inputs: x @ (alpha * sign(W)).T + b"),
        _row("w1a1", _pack_binary, reference.binary_linear_w1a1,
             "XNOR-Net: binary weights and mean|x| * sign(x) inputs, XNOR-popcount products"),
        _row("w1a8", _pack_binary, reference.binary_linear_w1a8,
             "binary weights, int8 absmax inputs per row, exact int8 products (table lookups or VNNI)"),
        _row("w1a1_elastic", _pack_binary_elastic, reference.binary_linear_elastic,
             "BiT: binary weights, elastic inputs alpha * sign((x - beta) / alpha)"),
        _row("w1a1_two_set", _pack_binary_elastic, reference.binary_linear_two_set,
             "BiT: binary weights, two-set inputs alpha * {0, 1} (post-GELU)"),
        _row("w158a32", _pack_ternary, reference.ternary_weight_linear,
             "BitNet b1.58 ternary weights as two sign planes, fp32 inputs"),
        _row("w158a8", _pack_ternary, reference.ternary_linear_w8,
             "BitNet b1.58 ternary weights as two sign planes, int8 absmax inputs per row"),
    )
}


class UnknownScheme(ValueError):
    """A scheme name, or a trained quantization, that no row of `SCHEMES` holds."""


def scheme_named(name: str) -> PackedScheme:
    try:
        return SCHEMES[name]
    except (KeyError, TypeError):
        raise UnknownScheme(f"unknown packed scheme {name!r}; the schemes are {sorted(SCHEMES)}") from None


def scheme_for(weights: str, activations: str) -> PackedScheme:
    """The scheme a linear trained with these `weights` and `activations` knobs exports to."""
    for scheme in SCHEMES.values():
        if (scheme.weights, scheme.activations) == (weights, activations):
            return scheme
    held = ", ".join(f"{s.name} ({s.weights} weights, {s.activations} activations)" for s in SCHEMES.values())
    raise UnknownScheme(f"no packed scheme holds {weights} weights with {activations} activations; the schemes are {held}")


@dataclass(frozen=True)
class TableFormat:
    """
    How an embedding table (word, position) is stored when it is not stored as a plain fp32 or
    fp16 `<table>.weight`: the rows of the registry above, for tables.

    name : as in the file (`tables.<table>.format`) and in `bitmaps-export --embeddings`.
    bits_per_weight : stored bits per entry, per-row scales excluded.
    tensors : what the file holds per table, `<table>.<role>`; shapes from (rows, dim).
    pack : the fp32 table (or, for `binary`, the trained quantizer and latent table) -> arrays.
    unpack : the arrays -> the fp32 table the model computes with (the tied MLM decoder too).
    """

    name: str
    bits_per_weight: float
    tensors: Tuple[TensorSpec, ...]
    pack: Callable[..., Dict[str, np.ndarray]]
    unpack: Callable[[Dict[str, torch.Tensor], int], torch.Tensor]
    summary: str


def _pack_int8_table(table: torch.Tensor) -> Dict[str, np.ndarray]:
    levels, step = quantize_int8_rows(table.detach().float().cpu())
    return {"q": levels.to(torch.int8).numpy(), "step": step.reshape(-1).numpy()}


def _unpack_int8_table(stored: Dict[str, torch.Tensor], dim: int) -> torch.Tensor:
    return stored["q"].float() * stored["step"].float()[:, None]


def _pack_int8_group_table(table: torch.Tensor) -> Dict[str, np.ndarray]:
    # the same absmax rule on each group of TABLE_GROUP values; zero padding of the last group
    # changes neither its absmax nor the stored values
    rows, dim = table.shape
    groups = table_groups(dim)
    padded = torch.zeros(rows, groups * TABLE_GROUP)
    padded[:, :dim] = table.detach().float().cpu()
    levels, step = quantize_int8_rows(padded.reshape(rows, groups, TABLE_GROUP))
    return {"q": levels.reshape(rows, -1)[:, :dim].to(torch.int8).numpy(), "step": step.reshape(rows, groups).numpy()}


def _unpack_int8_group_table(stored: Dict[str, torch.Tensor], dim: int) -> torch.Tensor:
    return stored["q"].float() * stored["step"].float().repeat_interleave(TABLE_GROUP, dim=1)[:, :dim]


def table_column_scales(table: torch.Tensor, exponent: float = TABLE_COLUMN_EXPONENT) -> torch.Tensor:
    """`int8_col`'s scale per column of a `(rows, dim)` table, max |column| ** `exponent`
    (`formats.TABLE_COLUMN_EXPONENT`; another only to measure the choice); a zero column keeps 1."""
    peak = table.detach().float().abs().amax(dim=0)
    return torch.where(peak > 0, peak.pow(exponent), torch.ones_like(peak))


def _pack_int8_column_table(table: torch.Tensor, exponent: float = TABLE_COLUMN_EXPONENT) -> Dict[str, np.ndarray]:
    table = table.detach().float().cpu()
    column = table_column_scales(table, exponent)
    levels, step = quantize_int8_rows(table / column)
    return {"q": levels.to(torch.int8).numpy(), "step": step.reshape(-1).numpy(), "column": column.numpy()}


def _unpack_int8_column_table(stored: Dict[str, torch.Tensor], dim: int) -> torch.Tensor:
    # this order of products is the C++ core's (encoder.cpp, table_row)
    return stored["q"].float() * stored["step"].float()[:, None] * stored["column"].float()[None, :]


def _unpack_binary_table(stored: Dict[str, torch.Tensor], dim: int) -> torch.Tensor:
    return unpack_signs(stored["packed_weight"], dim) * stored["scale"].float()[:, None]


_TABLE_SIDES = {
    "int8": (_pack_int8_table, _unpack_int8_table, "absmax int8 per row (quantization.int8's rule), an export option for any model"),
    "int8_g64": (
        _pack_int8_group_table,
        _unpack_int8_group_table,
        "absmax int8 per group of 64 values of a row (the same rule per group), an export option for any model",
    ),
    "int8_col": (
        _pack_int8_column_table,
        _unpack_int8_column_table,
        "absmax int8 per row after dividing each column by sqrt(max |column|), stored with those column scales "
        "(an export option for any model; README, packed parity)",
    ),
    "binary": (
        _pack_binary,
        _unpack_binary_table,
        "sign bits and a scale per row: a table trained binarized (binarized_components: word_embeddings)",
    ),
}
TABLE_FORMATS: Dict[str, TableFormat] = {
    name: TableFormat(name, spec.bits_per_weight, spec.tensors, *_TABLE_SIDES[name]) for name, spec in TABLE_SPECS.items()
}
# the format a table trained quantized (`QuantizedEmbedding`, its `weights` knob) is stored in: the
# one whose unpacked values are the trained table's, so the export adds no rounding
TRAINED_TABLE_FORMATS: Dict[str, str] = {"binary": "binary", "int8": "int8"}
