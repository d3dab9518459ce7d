import hashlib
import json
import struct

import numpy as np
import pytest

from bitmaps_allennlp.packed.file_format import (
    PackedFormatError,
    PackedModelFile,
    decode_packed_model,
    encode_packed_model,
    read_packed_model,
    write_packed_model,
)


def _small() -> PackedModelFile:
    return PackedModelFile(
        tensors={
            "layer.packed_weight": np.array([[0x8000000000000001, 2], [0, 2**64 - 1]], dtype=np.uint64),
            "layer.scale": np.array([0.5, 0.25], dtype=np.float32),
            "layer.bias": np.array([1.0, -1.0], dtype=np.float32),
            "embeddings": np.arange(6, dtype=np.float16).reshape(2, 3),
        },
        linears={"layer": {"in_features": 70, "out_features": 2}},
        config={"hidden_size": 3},
    )


# Pins the format: any change to the layout, header or checksum changes these bytes. A
# deliberate change needs a new FORMAT_VERSION (and readers of the old one).
GOLDEN_SHA256 = "08e2aa6a54be0da5cd026832b7917ca66372992771af571452a705d1451d5be5"


def test_golden_bytes():
    data = encode_packed_model(_small())
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    assert header_len % 8 == 0
    assert header["__metadata__"]["magic"] == "bitmaps-packed"
    assert header["__metadata__"]["format_version"] == "1"
    assert header["layer.packed_weight"] == {"dtype": "U64", "shape": [2, 2], "data_offsets": [0, 32]}
    # the first word, little-endian: bit 0 and bit 63 set
    assert data[8 + header_len : 16 + header_len] == bytes.fromhex("0100000000000080")
    assert hashlib.sha256(data).hexdigest() == GOLDEN_SHA256


def test_round_trip_through_a_file_and_plain_safetensors(tmp_path):
    from safetensors.numpy import load_file

    path = tmp_path / "model.safetensors"
    write_packed_model(_small(), path)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    back = read_packed_model(path)
    for name, array in _small().tensors.items():
        assert np.array_equal(back.tensors[name], array) and back.tensors[name].dtype == array.dtype
    assert back.linears == _small().linears and back.config == _small().config
    assert set(load_file(str(path))) == set(_small().tensors)


def _with_metadata(**changes) -> bytes:
    data = encode_packed_model(_small())
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    header["__metadata__"].update(changes)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    return struct.pack("<Q", len(encoded)) + encoded + data[8 + header_len :]


@pytest.mark.parametrize(
    "data, message",
    [
        (lambda d: d[:5], "truncated \\(5 bytes"),
        (lambda d: d[:40], "truncated \\(header says"),
        (lambda d: d[:-3], "truncated \\(tensors need"),
        (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "checksum mismatch"),
        (lambda d: _with_metadata(magic="something-else"), "not a Bitmaps packed model"),
        (lambda d: _with_metadata(format_version="2"), "format version '2'"),
        (lambda d: _with_metadata(bit_convention="bit1=+1"), "bit convention"),
        (lambda d: _with_metadata(linears=json.dumps({"layer": {"in_features": 200, "out_features": 2}})), "layer.packed_weight has shape"),
    ],
    ids=["no-header", "short-header", "short-data", "flipped-bit", "magic", "version", "bits", "shape"],
)
def test_bad_files_are_refused_naming_the_check(data, message):
    with pytest.raises(PackedFormatError, match=message):
        decode_packed_model(data(encode_packed_model(_small())))


def test_missing_file(tmp_path):
    with pytest.raises(PackedFormatError, match="no such packed model file"):
        read_packed_model(tmp_path / "absent.safetensors")
