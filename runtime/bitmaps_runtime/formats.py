"""
The facts of the packed format that need no torch, defined once and read by the file reader, the
runtime, and bitmaps_allennlp (whose `packed.schemes` adds each scheme's torch side: how a trained
layer is packed, its pure-torch reference, its kernel front end).

- `SCHEME_SPECS`: each packed scheme's name, its id in the C++ core (`csrc/linear.h`, `Scheme`),
  the training knobs it comes from, its bits per weight and the tensors it stores.
- `TABLE_SPECS`: the same for embedding-table formats.
- The attention vocabulary (`ACTIVATION_MODES`, `ATTENTION_MODES`, `ATTENTION_PROBS`) and its
  rules (`attention_problem`), which the training knobs (`BinarizationSpec`) apply too.
"""
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

# bit 1 means -1, bit 0 means +1; value k of a row at bit k % 64 of word k / 64
BIT_CONVENTION = "bit1=-1;bit0=+1;lsb-first;uint64-little-endian;rows-zero-padded-to-64"
WORD_BITS = 64
TERNARY_PLANES = 2


def words_per_row(in_features: int) -> int:
    return (in_features + WORD_BITS - 1) // WORD_BITS


# (in_features, out_features) -> the tensor's shape (for tables: (rows, dim))
ShapeRule = Callable[[int, int], Tuple[int, ...]]


@dataclass(frozen=True)
class TensorSpec:
    """A tensor a linear of this scheme stores as `<linear name>.<role>`."""

    role: str
    dtype: str  # safetensors dtype name
    shape: ShapeRule


@dataclass(frozen=True)
class SchemeSpec:
    """
    name : the scheme's one name (file, export, loader, kernels, README).
    native_id : its `Scheme` value in the C++ core.
    weights, activations : the training knobs (`bitmaps_binary_bert`) it is exported from.
    bits_per_weight : stored bits per weight, scales excluded.
    tensors : what the file holds per linear (the optional `bias` is common to all schemes).
    plane_scheme : for weights stored as sign planes (ternary), the binary scheme each plane runs as.
    """

    name: str
    native_id: int
    weights: str
    activations: str
    bits_per_weight: float
    tensors: Tuple[TensorSpec, ...]
    plane_scheme: Optional[str] = None


BINARY_TENSORS = (
    TensorSpec("packed_weight", "U64", lambda k, n: (n, words_per_row(k))),
    TensorSpec("scale", "F32", lambda k, n: (n,)),
)
ELASTIC_TENSORS = BINARY_TENSORS + (
    TensorSpec("input_alpha", "F32", lambda k, n: (1,)),
    TensorSpec("input_beta", "F32", lambda k, n: (1,)),
)
TERNARY_TENSORS = (
    TensorSpec("packed_weight", "U64", lambda k, n: (TERNARY_PLANES, n, words_per_row(k))),
    TensorSpec("scale", "F32", lambda k, n: (n,)),
)

SCHEME_SPECS: Dict[str, SchemeSpec] = {
    spec.name: spec
    for spec in (
        SchemeSpec("w1a32", 0, "binary", "real", 1, BINARY_TENSORS),
        SchemeSpec("w1a1", 1, "binary", "sign", 1, BINARY_TENSORS),
        SchemeSpec("w1a8", 2, "binary", "int8", 1, BINARY_TENSORS),
        SchemeSpec("w1a1_elastic", 3, "binary", "elastic", 1, ELASTIC_TENSORS),
        SchemeSpec("w1a1_two_set", 4, "binary", "two_set", 1, ELASTIC_TENSORS),
        SchemeSpec("w158a32", 5, "ternary", "real", 2, TERNARY_TENSORS, "w1a32"),
        SchemeSpec("w158a8", 6, "ternary", "int8", 2, TERNARY_TENSORS, "w1a8"),
    )
}
# a linear the export left in floating point (`<name>.weight`), in the C++ core's numbering
DENSE_NATIVE_ID = 7

# the optional bias of every packed linear
BIAS = TensorSpec("bias", "F32", lambda k, n: (n,))


@dataclass(frozen=True)
class TableSpec:
    """An embedding-table format (`tables.<table>.format`, `bitmaps-export --embeddings`) other than a
    plain fp32/fp16 `<table>.weight`: its stored bits per entry and tensors, shapes from (rows, dim)."""

    name: str
    native_id: int  # `TableFormat` in csrc/encoder.h
    bits_per_weight: float
    tensors: Tuple[TensorSpec, ...]


# `int8_g64`: one absmax step per group of this many consecutive values of a row (the last group
# of a row may be shorter). The tied decoder's rounding with per-row steps costs 0.1-0.4% of PTB
# perplexity; smaller steps cut that (README, packed parity) for 20 more bytes per 384-wide row.
TABLE_GROUP = 64
# `int8_col`: per-row int8 of the table divided column-wise by column_scale = max|column| ** this
# exponent, stored with the column scales (value = q * step[row] * column[col]). A few hidden
# dimensions are large in every row of a BERT word table, so the most frequent wordpieces' rows
# have absmax 8-14x their rms (median 3x) and per-row steps waste most of their 255 levels on
# them; dividing by a column's scale evens the rows out for dim floats per table. 0.5 (the square
# root, SmoothQuant's default migration strength): against per-row steps, -46% frequency-weighted
# squared error on a trained word table and -58% on the position table; larger exponents gain a
# little more on the word table and lose on the position table (scripts/table_rounding.py).
TABLE_COLUMN_EXPONENT = 0.5


def table_groups(dim: int) -> int:
    return (dim + TABLE_GROUP - 1) // TABLE_GROUP


TABLE_SPECS: Dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            "int8",
            2,
            8,
            (TensorSpec("q", "I8", lambda rows, dim: (rows, dim)), TensorSpec("step", "F32", lambda rows, dim: (rows,))),
        ),
        TableSpec(
            "int8_g64",
            4,
            8,
            (
                TensorSpec("q", "I8", lambda rows, dim: (rows, dim)),
                TensorSpec("step", "F32", lambda rows, dim: (rows, table_groups(dim))),
            ),
        ),
        TableSpec(
            "int8_col",
            5,
            8,
            (
                TensorSpec("q", "I8", lambda rows, dim: (rows, dim)),
                TensorSpec("step", "F32", lambda rows, dim: (rows,)),
                TensorSpec("column", "F32", lambda rows, dim: (dim,)),
            ),
        ),
        TableSpec(
            "binary",
            3,
            1,
            (
                TensorSpec("packed_weight", "U64", lambda rows, dim: (rows, words_per_row(dim))),
                TensorSpec("scale", "F32", lambda rows, dim: (rows,)),
            ),
        ),
    )
}
# plain tables, in the C++ core's numbering
PLAIN_TABLE_IDS = {"F32": 0, "F16": 1}

# A BERT layer's linears, in one order everywhere: component name (the training knobs' and the C++
# core's slot name, csrc/linear.h) -> its module path inside a `transformers` BertLayer and in a
# packed file, and its (in, out) features from the config's (hidden, intermediate) sizes.
BERT_LAYER_LINEARS: Dict[str, str] = {
    "query": "attention.self.query",
    "key": "attention.self.key",
    "value": "attention.self.value",
    "attention_output": "attention.output.dense",
    "ffn_in": "intermediate.dense",
    "ffn_out": "output.dense",
}


def layer_linear_features(component: str, hidden: int, intermediate: int) -> Tuple[int, int]:
    """(in, out) features of a BERT layer's linear."""
    return {"ffn_in": (hidden, intermediate), "ffn_out": (intermediate, hidden)}.get(component, (hidden, hidden))


# The activation quantizers, in the C++ core's numbering (`Quantizer` in csrc/encoder.h).
ACTIVATION_MODES: Tuple[str, ...] = ("real", "int8", "sign", "elastic", "two_set")
ONE_BIT_ACTIVATIONS: Tuple[str, ...] = ("sign", "elastic", "two_set")
ATTENTION_MODES: Tuple[str, ...] = ("softmax", "bi_attention")
ATTENTION_PROBS: Tuple[str, ...] = ("real", "int8", "two_set")
FULL_PRECISION_ATTENTION = {"attention": "softmax", "activations": "real", "probs": "real"}


def attention_problem(attention: str, activations: str, probs: str) -> Optional[str]:
    """What is wrong with this attention quantization, naming the knob, or None if it is valid."""
    if attention not in ATTENTION_MODES:
        return f"attention must be one of {list(ATTENTION_MODES)}, got {attention!r}"
    if activations not in ACTIVATION_MODES:
        return f"attention_activations must be one of {list(ACTIVATION_MODES)}, got {activations!r}"
    if activations == "two_set":
        return "attention_activations: Q, K and V are signed; use 'sign' or 'elastic', not 'two_set'"
    if probs not in ATTENTION_PROBS:
        return f"attention_probs must be one of {list(ATTENTION_PROBS)}, got {probs!r}"
    if attention == "bi_attention" and probs != "real":
        return "attention_probs: bi_attention already binarizes the attention weights; leave attention_probs 'real'"
    return None
