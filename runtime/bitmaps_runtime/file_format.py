"""
The packed model file: a safetensors file (no pickle) whose metadata carries a versioned header.

Layout (safetensors): 8-byte little-endian header length, a JSON header, the tensor bytes. The
header maps each tensor name to `{"dtype", "shape", "data_offsets"}` and `__metadata__` to:
`magic` ("bitmaps-packed"), `format_version`, `bit_convention`, `config` (JSON: the BERT
config), `linears` (JSON: name -> {"in_features", "out_features", "scheme", "bits"}: the
linear's packed scheme, a row of `formats.SCHEME_SPECS`, and its bits per weight) and `sha256`.

Format 2: `sha256` covers the whole header and the data: the canonical JSON of every other
metadata field and of the tensor table (names, dtypes, shapes, offsets), then every data byte.
A header cannot be changed without the checksum noticing (format 1's covered the tensors' names
and bytes only, so a changed dtype or config value loaded silently). Format 1 files are refused
with a message to re-export them from their training archive.

Each packed linear stores the tensors its scheme lists (for the binary schemes uint64 sign words
`NAME.packed_weight` and fp32 per-channel scales `NAME.scale`) and optionally `NAME.bias`;
everything else is fp32 or fp16.

Reading validates, in this order, and every violation is a `PackedFormatError` naming the field:
the file's length against the header length; the header's JSON and its structure (metadata
strings, each tensor's dtype, shape and offsets, tiling the data exactly); magic, version and
bit convention; the checksum; the config's values; each linear entry against the linears a
BERT of that config has, with the shapes that config implies; and each tensor's dtype and shape
against its role. `packed_bert` then checks the remaining tensors against the encoder it builds.
"""
import hashlib
import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

import numpy as np

from bitmaps_runtime.atomic import atomic_file
from bitmaps_runtime.formats import (
    BERT_LAYER_LINEARS,
    BIAS,
    BIT_CONVENTION,
    FULL_PRECISION_ATTENTION,
    SCHEME_SPECS,
    TABLE_SPECS,
    attention_problem,
    layer_linear_features,
)

MAGIC = "bitmaps-packed"
FORMAT_VERSION = 2
_LINEAR_KEYS = {"in_features", "out_features", "scheme", "bits"}


class PackedFormatError(ValueError):
    """A packed model file failed one of the reader's checks (the message names which)."""


@dataclass
class PackedModelFile:
    tensors: Dict[str, np.ndarray]
    linears: Dict[str, Dict[str, Any]]
    config: Dict[str, Any]
    # embedding tables stored in a `TABLE_SPECS` format (the others are plain `<table>.weight`)
    tables: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    # how every layer's attention quantizes Q, K, V and the attention weights, as trained
    attention: Dict[str, str] = field(default_factory=lambda: dict(FULL_PRECISION_ATTENTION))


_SAFETENSORS_DTYPES = {
    np.dtype(np.float32): "F32",
    np.dtype(np.float16): "F16",
    np.dtype(np.uint64): "U64",
    np.dtype(np.int8): "I8",
}
_NUMPY_DTYPES = {name: dtype.newbyteorder("<") for dtype, name in _SAFETENSORS_DTYPES.items()}
_TABLE_KEYS = {"rows", "dim", "format", "bits"}
# tensors outside a scheme's list: fp32 or fp16 (`--fp16`)
_PLAIN_DTYPES = ("F32", "F16")
_METADATA_KEYS = ("attention", "bit_convention", "config", "format_version", "linears", "magic", "sha256", "tables")

# BERT config values the packed encoder is built from: each a positive integer
_CONFIG_SIZES = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
)
_HIDDEN_ACTS = ("gelu", "gelu_new", "gelu_python", "gelu_pytorch_tanh", "relu", "silu", "swish", "tanh")


def _checksum(metadata: Dict[str, str], table: Dict[str, Dict[str, Any]], payload: bytes) -> str:
    covered = {"metadata": {k: v for k, v in metadata.items() if k != "sha256"}, "tensors": table}
    digest = hashlib.sha256(json.dumps(covered, sort_keys=True, separators=(",", ":")).encode())
    digest.update(payload)
    return digest.hexdigest()


def encode_packed_model(packed: PackedModelFile) -> bytes:
    """The safetensors layout, written here rather than by `safetensors.save` because that orders
    the metadata differently in every process: this encoding is canonical, so the same model
    gives the same bytes."""
    tensors = {}
    for name, array in packed.tensors.items():
        array = np.asarray(array, order="C")  # (not ascontiguousarray: it turns 0-d arrays into 1-d)
        if array.dtype.newbyteorder("=") not in _SAFETENSORS_DTYPES:
            raise PackedFormatError(f"{name}: dtype {array.dtype} cannot be stored")
        tensors[name] = array.astype(array.dtype.newbyteorder("<"), copy=False)
    # widest items first, so every tensor starts aligned to its own item size
    order = sorted(tensors, key=lambda name: (-tensors[name].itemsize, name))
    table: Dict[str, Dict[str, Any]] = {}
    offset = 0
    for name in order:
        nbytes = tensors[name].nbytes
        table[name] = {
            "dtype": _SAFETENSORS_DTYPES[tensors[name].dtype.newbyteorder("=")],
            "shape": list(tensors[name].shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    payload = b"".join(tensors[n].tobytes() for n in order)
    metadata = {
        "attention": json.dumps(packed.attention, sort_keys=True),
        "bit_convention": BIT_CONVENTION,
        "config": json.dumps(packed.config, sort_keys=True),
        "format_version": str(FORMAT_VERSION),
        "linears": json.dumps(packed.linears, sort_keys=True),
        "magic": MAGIC,
        "tables": json.dumps(packed.tables, sort_keys=True),
    }
    metadata["sha256"] = _checksum(metadata, table, payload)
    header: Dict[str, Any] = {"__metadata__": metadata, **table}
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    return struct.pack("<Q", len(encoded)) + encoded + payload


def write_packed_model(packed: PackedModelFile, path: Union[str, Path]) -> int:
    """Atomic: written to a temporary file in the same folder, then renamed over `path`."""
    data = encode_packed_model(packed)
    with atomic_file(path, "wb") as out:
        out.write(data)
    return len(data)


def decode_packed_model(data: bytes, source: str = "packed model") -> PackedModelFile:
    if len(data) < 8:
        raise PackedFormatError(f"{source}: truncated ({len(data)} bytes, no header)")
    (header_len,) = struct.unpack("<Q", data[:8])
    if 8 + header_len > len(data):
        raise PackedFormatError(
            f"{source}: truncated (header says {header_len} bytes, file has {len(data) - 8})"
        )
    try:
        header = json.loads(data[8 : 8 + header_len])
    except ValueError as error:
        raise PackedFormatError(f"{source}: header is not valid JSON ({error})") from None
    if not isinstance(header, dict):
        raise PackedFormatError(f"{source}: header is a JSON {type(header).__name__}, expected an object")
    metadata = _metadata(header.pop("__metadata__", None), source)
    table, data_len = _tensor_table(header, source)
    payload_start = 8 + header_len
    if payload_start + data_len > len(data):
        raise PackedFormatError(
            f"{source}: truncated (tensors need {data_len} bytes after the header, "
            f"file has {len(data) - payload_start})"
        )
    if payload_start + data_len < len(data):
        raise PackedFormatError(
            f"{source}: {len(data) - payload_start - data_len} bytes after the last tensor"
        )
    _check_identity(metadata, source)
    if _checksum(metadata, table, data[payload_start:]) != metadata["sha256"]:
        raise PackedFormatError(f"{source}: checksum mismatch, the file is corrupted or was edited")
    config = _json_object(metadata, "config", source)
    _check_config(config, source)
    linears = _json_object(metadata, "linears", source)
    _check_linears(linears, config, source)
    tables = _json_object(metadata, "tables", source)
    _check_tables(tables, config, source)
    attention = _json_object(metadata, "attention", source)
    _check_attention(attention, source)
    _check_roles(table, linears, tables, source)
    tensors = {
        name: np.frombuffer(
            data,
            dtype=_NUMPY_DTYPES[entry["dtype"]],
            count=math.prod(entry["shape"]),
            offset=payload_start + entry["data_offsets"][0],
        ).reshape(entry["shape"])
        for name, entry in table.items()
    }
    return PackedModelFile(tensors=tensors, linears=linears, config=config, tables=tables, attention=attention)


def _metadata(metadata: Any, source: str) -> Dict[str, str]:
    if not isinstance(metadata, dict):
        raise PackedFormatError(f"{source}: header field __metadata__ is missing or not an object")
    if "format_version" in metadata and metadata["format_version"] == "1":
        raise PackedFormatError(
            f"{source}: format version 1, whose checksum does not cover the header; re-export it "
            "with this version (`allennlp bitmaps-export MODEL.tar.gz OUTPUT.tar.gz`)"
        )
    for key in _METADATA_KEYS:
        if not isinstance(metadata.get(key), str):
            raise PackedFormatError(
                f"{source}: header field __metadata__.{key} is {_shown(metadata.get(key))}, expected a string"
            )
    return metadata


def _tensor_table(header: Dict[str, Any], source: str) -> Tuple[Dict[str, Dict[str, Any]], int]:
    """Each entry's dtype, shape and offsets; together the entries must tile the data exactly
    (no gaps, no overlaps), as the writer lays them out."""
    spans: List[Tuple[int, int, str]] = []
    for name, entry in header.items():
        field = f"tensor {name!r}"
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise PackedFormatError(f"{source}: {field} must be an object with dtype, shape and data_offsets")
        if entry["dtype"] not in _NUMPY_DTYPES:
            raise PackedFormatError(
                f"{source}: {field}.dtype is {_shown(entry['dtype'])}, expected one of {sorted(_NUMPY_DTYPES)}"
            )
        shape, offsets = entry["shape"], entry["data_offsets"]
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            raise PackedFormatError(f"{source}: {field}.shape is {_shown(shape)}, expected a list of non-negative integers")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) and o >= 0 for o in offsets)):
            raise PackedFormatError(f"{source}: {field}.data_offsets is {_shown(offsets)}, expected [start, end]")
        nbytes = math.prod(shape) * _NUMPY_DTYPES[entry["dtype"]].itemsize
        if offsets[1] - offsets[0] != nbytes:
            raise PackedFormatError(
                f"{source}: {field}.data_offsets {offsets} span {offsets[1] - offsets[0]} bytes, "
                f"its dtype and shape need {nbytes}"
            )
        if offsets[0] % _NUMPY_DTYPES[entry["dtype"]].itemsize:
            raise PackedFormatError(f"{source}: {field} starts at {offsets[0]}, not aligned to its item size")
        spans.append((offsets[0], offsets[1], name))
    end = 0
    for start, stop, name in sorted(spans):
        if start != end:
            raise PackedFormatError(
                f"{source}: tensor {name!r}.data_offsets start at {start}, expected {end} (gap or overlap)"
            )
        end = stop
    return header, end


def _check_identity(metadata: Dict[str, str], source: str) -> None:
    if metadata["magic"] != MAGIC:
        raise PackedFormatError(
            f"{source}: not a Bitmaps packed model (magic {metadata['magic']!r}, expected {MAGIC!r})"
        )
    if metadata["format_version"] != str(FORMAT_VERSION):
        raise PackedFormatError(
            f"{source}: format version {metadata['format_version']!r}; this version of "
            f"Bitmaps reads version {FORMAT_VERSION}"
        )
    if metadata["bit_convention"] != BIT_CONVENTION:
        raise PackedFormatError(
            f"{source}: bit convention {metadata['bit_convention']!r}, expected {BIT_CONVENTION!r}"
        )


def _json_object(metadata: Dict[str, str], key: str, source: str) -> Dict[str, Any]:
    try:
        value = json.loads(metadata[key])
    except ValueError as error:
        raise PackedFormatError(f"{source}: header field __metadata__.{key} is not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise PackedFormatError(f"{source}: header field __metadata__.{key} is {_shown(value)}, expected a JSON object")
    return value


def _check_config(config: Dict[str, Any], source: str) -> None:
    for key in _CONFIG_SIZES:
        if not (_is_int(config.get(key)) and config[key] > 0):
            raise PackedFormatError(f"{source}: config.{key} is {_shown(config.get(key))}, expected a positive integer")
    if config["hidden_size"] % config["num_attention_heads"]:
        raise PackedFormatError(
            f"{source}: config.hidden_size {config['hidden_size']} is not a multiple of "
            f"config.num_attention_heads {config['num_attention_heads']}"
        )
    eps = config.get("layer_norm_eps")
    if not (isinstance(eps, (int, float)) and not isinstance(eps, bool) and 0 < eps < 1):
        raise PackedFormatError(f"{source}: config.layer_norm_eps is {_shown(eps)}, expected a number in (0, 1)")
    if config.get("hidden_act") not in _HIDDEN_ACTS:
        raise PackedFormatError(
            f"{source}: config.hidden_act is {_shown(config.get('hidden_act'))}, expected one of {list(_HIDDEN_ACTS)}"
        )
    if config.get("model_type", "bert") != "bert":
        raise PackedFormatError(f"{source}: config.model_type is {_shown(config.get('model_type'))}, expected 'bert'")


def expected_linears(config: Dict[str, Any]) -> Dict[str, Tuple[int, int]]:
    """Every linear a packed BERT masked LM of this config may hold: name -> (in, out) features."""
    hidden, inner = config["hidden_size"], config["intermediate_size"]
    linears = {
        f"encoder.layer.{layer}.{path}": layer_linear_features(component, hidden, inner)
        for layer in range(config["num_hidden_layers"])
        for component, path in BERT_LAYER_LINEARS.items()
    }
    linears["head.dense"] = (hidden, hidden)  # the masked-LM head's transform (`mlm_head`)
    return linears


def _check_linears(linears: Dict[str, Any], config: Dict[str, Any], source: str) -> None:
    if not linears:
        raise PackedFormatError(f"{source}: header field linears is empty; a packed model has binarized linears")
    possible = expected_linears(config)
    for name, entry in linears.items():
        field = f"linears.{name}"
        if name not in possible:
            raise PackedFormatError(
                f"{source}: {field} is not a linear of a {config['num_hidden_layers']}-layer BERT "
                "(expected encoder.layer.<i>.attention.self.query, ... .output.dense)"
            )
        if not isinstance(entry, dict) or set(entry) != _LINEAR_KEYS:
            raise PackedFormatError(f"{source}: {field} must be an object with exactly {sorted(_LINEAR_KEYS)}")
        shape = (entry["in_features"], entry["out_features"])
        if shape != possible[name] or not all(_is_int(d) for d in shape):
            raise PackedFormatError(
                f"{source}: {field} has (in_features, out_features) = {_shown(shape)}, the config implies {possible[name]}"
            )
        scheme = SCHEME_SPECS.get(entry["scheme"]) if isinstance(entry["scheme"], str) else None
        if scheme is None:
            raise PackedFormatError(
                f"{source}: {field}.scheme is {_shown(entry['scheme'])}, expected one of {sorted(SCHEME_SPECS)}"
            )
        if entry["bits"] != scheme.bits_per_weight or isinstance(entry["bits"], bool):
            raise PackedFormatError(
                f"{source}: {field}.bits is {_shown(entry['bits'])}; scheme {scheme.name} stores {scheme.bits_per_weight}"
            )


def _check_attention(attention: Dict[str, Any], source: str) -> None:
    """The rules the training knobs follow too (`formats.attention_problem`)."""
    if set(attention) != set(FULL_PRECISION_ATTENTION):
        raise PackedFormatError(f"{source}: header field attention must be an object with exactly {sorted(FULL_PRECISION_ATTENTION)}")
    values = [attention["attention"], attention["activations"], attention["probs"]]
    problem = (
        attention_problem(*values)
        if all(isinstance(v, str) for v in values)
        else f"values must be strings, got {_shown(values)}"
    )
    if problem is not None:
        raise PackedFormatError(f"{source}: header field attention: {problem}")


def expected_tables(config: Dict[str, Any]) -> Dict[str, Tuple[int, int]]:
    """The embedding tables of a BERT of this config: name -> (rows, dim)."""
    hidden = config["hidden_size"]
    return {
        "embeddings.word_embeddings": (config["vocab_size"], hidden),
        "embeddings.position_embeddings": (config["max_position_embeddings"], hidden),
        "embeddings.token_type_embeddings": (config["type_vocab_size"], hidden),
    }


def _check_tables(tables: Dict[str, Any], config: Dict[str, Any], source: str) -> None:
    possible = expected_tables(config)
    for name, entry in tables.items():
        field = f"tables.{name}"
        if name not in possible:
            raise PackedFormatError(f"{source}: {field} is not an embedding table of BERT (expected one of {sorted(possible)})")
        if not isinstance(entry, dict) or set(entry) != _TABLE_KEYS:
            raise PackedFormatError(f"{source}: {field} must be an object with exactly {sorted(_TABLE_KEYS)}")
        if (entry["rows"], entry["dim"]) != possible[name] or not (_is_int(entry["rows"]) and _is_int(entry["dim"])):
            raise PackedFormatError(
                f"{source}: {field} has (rows, dim) = {_shown((entry['rows'], entry['dim']))}, the config implies {possible[name]}"
            )
        table_format = TABLE_SPECS.get(entry["format"]) if isinstance(entry["format"], str) else None
        if table_format is None:
            raise PackedFormatError(f"{source}: {field}.format is {_shown(entry['format'])}, expected one of {sorted(TABLE_SPECS)}")
        if entry["bits"] != table_format.bits_per_weight or isinstance(entry["bits"], bool):
            raise PackedFormatError(
                f"{source}: {field}.bits is {_shown(entry['bits'])}; format {table_format.name} stores {table_format.bits_per_weight}"
            )


def _check_roles(table: Dict[str, Dict[str, Any]], linears: Dict[str, Any], tables: Dict[str, Any], source: str) -> None:
    """Each linear's tensors are exactly its scheme's (plus an optional bias), each listed table's
    exactly its format's, with their dtypes and shapes; every other tensor is fp32 or fp16."""
    owned = set()
    groups = [(name, SCHEME_SPECS[e["scheme"]].tensors, (e["in_features"], e["out_features"]), True) for name, e in linears.items()]
    groups += [(name, TABLE_SPECS[e["format"]].tensors, (e["rows"], e["dim"]), False) for name, e in tables.items()]
    for name, specs, sizes, has_bias in groups:
        k, n = sizes
        for spec in specs + ((BIAS,) if has_bias and f"{name}.bias" in table else ()):
            key, dims = f"{name}.{spec.role}", list(spec.shape(k, n))
            found = table.get(key)
            if found is None or found["shape"] != dims:
                raise PackedFormatError(
                    f"{source}: tensor {key!r} has shape {None if found is None else found['shape']}, expected {dims}"
                )
            allowed = _PLAIN_DTYPES if spec is BIAS else (spec.dtype,)
            if found["dtype"] not in allowed:
                raise PackedFormatError(f"{source}: tensor {key!r}.dtype is {found['dtype']!r}, expected one of {list(allowed)}")
            owned.add(key)
    for key, entry in table.items():
        owner = key.rpartition(".")[0]
        if (owner in linears or owner in tables) and key not in owned:
            raise PackedFormatError(f"{source}: tensor {key!r} is not one of the tensors its scheme or table format stores")
        if key not in owned and entry["dtype"] not in _PLAIN_DTYPES:
            raise PackedFormatError(f"{source}: tensor {key!r}.dtype is {entry['dtype']!r}, expected one of {list(_PLAIN_DTYPES)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_packed_model(path: Union[str, Path]) -> PackedModelFile:
    path = Path(path)
    if not path.is_file():
        raise PackedFormatError(f"{path}: no such packed model file")
    return decode_packed_model(path.read_bytes(), source=str(path))
