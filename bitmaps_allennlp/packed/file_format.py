"""
The packed model file: a safetensors file (no pickle) whose metadata carries a versioned header.

metadata keys: `magic` ("bitmaps-packed"), `format_version`, `bit_convention`,
`linears` (JSON: name -> {"in_features", "out_features"}), `config` (JSON: the BERT config),
`sha256` (over every tensor's bytes in sorted-name order). Binarized weights are stored as
uint64 words (`NAME.packed_weight`) and fp32 per-channel scales (`NAME.scale`); everything else as
it is (fp32 or fp16).

Reading checks, in order, and says which failed: that the file is complete (header length and
data offsets within the file size), that it parses, the magic, the version, the bit convention,
the checksum, and that every packed linear's tensors have the shapes its header entry implies.
"""
import hashlib
import json
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Union

import numpy as np
from safetensors.numpy import load as load_safetensors

from bitmaps_allennlp.packed.bit_packing import BIT_CONVENTION, words_per_row

MAGIC = "bitmaps-packed"
FORMAT_VERSION = 1
# how a packed linear's inputs are fed: fp32 (W1A32), mean|x| * sign(x) (XNOR W1A1), or int8
# absmax per row (W1A8)
ACTIVATION_MODES = ("real", "binary", "int8")


class PackedFormatError(ValueError):
    """A packed model file failed one of the reader's checks (the message names which)."""


@dataclass
class PackedModelFile:
    tensors: Dict[str, np.ndarray]
    linears: Dict[str, Dict[str, int]]
    config: Dict[str, Any]


def _checksum(tensors: Dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(tensors[name]).tobytes())
    return digest.hexdigest()


_SAFETENSORS_DTYPES = {
    np.dtype(np.float32): "F32",
    np.dtype(np.float16): "F16",
    np.dtype(np.uint64): "U64",
    np.dtype(np.int64): "I64",
}


def encode_packed_model(packed: PackedModelFile) -> bytes:
    """The safetensors layout (8-byte little-endian header length, JSON header, tensor bytes),
    written here rather than by `safetensors.save` because that orders the metadata differently
    in every process: this encoding is canonical, so the same model gives the same bytes."""
    tensors = {}
    for name, array in packed.tensors.items():
        array = np.ascontiguousarray(array)
        if array.dtype not in _SAFETENSORS_DTYPES:
            raise PackedFormatError(f"{name}: dtype {array.dtype} cannot be stored")
        tensors[name] = array.astype(array.dtype.newbyteorder("<"), copy=False)
    metadata = {
        "bit_convention": BIT_CONVENTION,
        "config": json.dumps(packed.config, sort_keys=True),
        "format_version": str(FORMAT_VERSION),
        "linears": json.dumps(packed.linears, sort_keys=True),
        "magic": MAGIC,
        "sha256": _checksum(tensors),
    }
    header: Dict[str, Any] = {"__metadata__": metadata}
    # widest items first, so every tensor starts aligned to its own item size
    order = sorted(tensors, key=lambda name: (-tensors[name].itemsize, name))
    offset = 0
    for name in order:
        nbytes = tensors[name].nbytes
        header[name] = {
            "dtype": _SAFETENSORS_DTYPES[tensors[name].dtype.newbyteorder("=")],
            "shape": list(tensors[name].shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    return b"".join([struct.pack("<Q", len(encoded)), encoded] + [tensors[n].tobytes() for n in order])


def write_packed_model(packed: PackedModelFile, path: Union[str, Path]) -> int:
    """Atomic: written to a temporary file in the same folder, then renamed over `path`."""
    data = encode_packed_model(packed)
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
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
    metadata = header.pop("__metadata__", None) or {}
    data_len = max((entry["data_offsets"][1] for entry in header.values()), default=0)
    if 8 + header_len + data_len > len(data):
        raise PackedFormatError(
            f"{source}: truncated (tensors need {data_len} bytes after the header, "
            f"file has {len(data) - 8 - header_len})"
        )
    if metadata.get("magic") != MAGIC:
        raise PackedFormatError(
            f"{source}: not a Bitmaps packed model (magic {metadata.get('magic')!r}, "
            f"expected {MAGIC!r})"
        )
    if metadata.get("format_version") != str(FORMAT_VERSION):
        raise PackedFormatError(
            f"{source}: format version {metadata.get('format_version')!r}; this version of "
            f"bitmaps_allennlp reads version {FORMAT_VERSION}"
        )
    if metadata.get("bit_convention") != BIT_CONVENTION:
        raise PackedFormatError(
            f"{source}: bit convention {metadata.get('bit_convention')!r}, expected {BIT_CONVENTION!r}"
        )
    try:
        tensors = dict(load_safetensors(data))
    except Exception as error:  # safetensors raises its own error types for malformed files
        raise PackedFormatError(f"{source}: tensors do not parse ({error})") from None
    if _checksum(tensors) != metadata.get("sha256"):
        raise PackedFormatError(f"{source}: checksum mismatch, the file is corrupted")
    packed = PackedModelFile(
        tensors=tensors, linears=json.loads(metadata["linears"]), config=json.loads(metadata["config"])
    )
    _check_linear_shapes(packed, source)
    return packed


def _check_linear_shapes(packed: PackedModelFile, source: str) -> None:
    for name, shape in packed.linears.items():
        if shape.get("activations", "real") not in ACTIVATION_MODES:
            raise PackedFormatError(
                f"{source}: {name} has activations {shape.get('activations')!r}, expected one of {list(ACTIVATION_MODES)}"
            )
        expected = {
            f"{name}.packed_weight": (shape["out_features"], words_per_row(shape["in_features"])),
            f"{name}.scale": (shape["out_features"],),
        }
        for key, dims in expected.items():
            tensor = packed.tensors.get(key)
            if tensor is None or tuple(tensor.shape) != dims:
                found = None if tensor is None else tuple(tensor.shape)
                raise PackedFormatError(f"{source}: {key} has shape {found}, expected {dims}")


def read_packed_model(path: Union[str, Path]) -> PackedModelFile:
    path = Path(path)
    if not path.is_file():
        raise PackedFormatError(f"{path}: no such packed model file")
    return decode_packed_model(path.read_bytes(), source=str(path))
