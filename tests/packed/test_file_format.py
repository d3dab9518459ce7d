import hashlib
import json
import random
import struct

import numpy as np
import pytest
import torch

from bitmaps_allennlp.packed.file_format import (
    PackedFormatError,
    PackedModelFile,
    decode_packed_model,
    encode_packed_model,
    read_packed_model,
    write_packed_model,
)

LINEAR = "encoder.layer.0.attention.self.query"
CONFIG = {
    "vocab_size": 6,
    "hidden_size": 70,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 8,
    "max_position_embeddings": 8,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
    "hidden_act": "gelu",
    "model_type": "bert",
}


def _small() -> PackedModelFile:
    words = np.zeros((70, 2), dtype=np.uint64)
    words[0] = [0x8000000000000001, 2]
    return PackedModelFile(
        tensors={
            f"{LINEAR}.packed_weight": words,
            f"{LINEAR}.scale": np.full(70, 0.5, dtype=np.float32),
            f"{LINEAR}.bias": np.linspace(-1, 1, 70, dtype=np.float32),
            "embeddings.word_embeddings.weight": np.arange(6 * 70, dtype=np.float16).reshape(6, 70),
        },
        linears={LINEAR: {"in_features": 70, "out_features": 70, "scheme": "w1a1", "bits": 1}},
        config=dict(CONFIG),
    )


# Pins the format: any change to the layout, header or checksum changes these bytes. A
# deliberate change needs a new FORMAT_VERSION (and readers of the old one, or a clear refusal).
GOLDEN_SHA256 = "62751a9a3a8e2668ed0bb06d12ef3e527ebaaa027f2d030afa1b31a910731b36"


def _header(data: bytes):
    (header_len,) = struct.unpack("<Q", data[:8])
    return header_len, json.loads(data[8 : 8 + header_len])


def test_golden_bytes():
    data = encode_packed_model(_small())
    header_len, header = _header(data)
    assert header_len % 8 == 0
    assert header["__metadata__"]["magic"] == "bitmaps-packed"
    assert header["__metadata__"]["format_version"] == "2"
    assert header[f"{LINEAR}.packed_weight"] == {"dtype": "U64", "shape": [70, 2], "data_offsets": [0, 1120]}
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


def _rewritten(data: bytes, edit) -> bytes:
    """The file with its header edited by `edit(header)` and the checksum left as it was."""
    header_len, header = _header(data)
    edit(header)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    return struct.pack("<Q", len(encoded)) + encoded + data[8 + header_len :]


def _metadata(**changes):
    return lambda header: header["__metadata__"].update(changes)


def _json_field(key, edit):
    def apply(header):
        value = json.loads(header["__metadata__"][key])
        edit(value)
        header["__metadata__"][key] = json.dumps(value, sort_keys=True)

    return apply


def _tensor(name, **changes):
    return lambda header: header[name].update(changes)


@pytest.mark.parametrize(
    "data, message",
    [
        (lambda d: d[:5], "truncated \\(5 bytes"),
        (lambda d: d[:40], "truncated \\(header says"),
        (lambda d: d[:-3], "truncated \\(tensors need"),
        (lambda d: d + b"\0", "1 bytes after the last tensor"),
        (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "checksum mismatch"),
        (lambda d: _rewritten(d, _metadata(magic="something-else")), "not a Bitmaps packed model"),
        (lambda d: _rewritten(d, _tensor("embeddings.word_embeddings.weight", dtype="F32", data_offsets=[1120 + 560 + 280, 1120 + 560 + 280 + 1680])), "checksum mismatch|data_offsets"),
        (lambda d: _rewritten(d, _json_field("config", lambda c: c.update(layer_norm_eps=1e-5))), "checksum mismatch"),
        (lambda d: _rewritten(d, _json_field("linears", lambda l: l[LINEAR].update(scheme="w1a32"))), "checksum mismatch"),
        (lambda d: _rewritten(d, _metadata(format_version="1")), "format version 1.*re-export"),
        (lambda d: _rewritten(d, lambda h: h.pop("__metadata__")), "__metadata__ is missing"),
        (lambda d: _rewritten(d, _metadata(config=7)), "__metadata__.config is 7, expected a string"),
        (lambda d: _rewritten(d, _tensor(f"{LINEAR}.scale", dtype="F64")), "dtype is 'F64'"),
        (lambda d: _rewritten(d, _tensor(f"{LINEAR}.scale", shape="70")), "shape is '70'"),
        (lambda d: _rewritten(d, _tensor(f"{LINEAR}.scale", data_offsets=[0])), "data_offsets is \\[0\\]"),
        (lambda d: _rewritten(d, _tensor(f"{LINEAR}.scale", shape=[71])), "span 280 bytes, its dtype and shape need 284"),
        (lambda d: _rewritten(d, lambda h: h.update({"extra": 1})), "tensor 'extra' must be an object"),
        (lambda d: b"\x02\0\0\0\0\0\0\0[]", "header is a JSON list"),
        (lambda d: b"\x02\0\0\0\0\0\0\0{]", "not valid JSON"),
    ],
    ids=[
        "no-header", "short-header", "short-data", "trailing-bytes", "flipped-bit", "magic",
        "dtype-swap", "config-value", "linear-entry", "version-1", "no-metadata", "metadata-type",
        "unknown-dtype", "shape-type", "offsets-type", "shape-vs-offsets", "stray-entry",
        "header-list", "header-json",
    ],
)
def test_bad_files_are_refused_naming_the_check(data, message):
    with pytest.raises(PackedFormatError, match=message):
        decode_packed_model(data(encode_packed_model(_small())))


def _encoded_with(edit) -> bytes:
    """A file with a consistent checksum whose content is invalid: what a crafted file looks like."""
    packed = _small()
    edit(packed)
    return encode_packed_model(packed)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p: p.config.update(hidden_size="70"), "config.hidden_size is '70', expected a positive integer"),
        (lambda p: p.config.update(num_attention_heads=3), "not a multiple of config.num_attention_heads"),
        (lambda p: p.config.pop("vocab_size"), "config.vocab_size is None"),
        (lambda p: p.config.update(layer_norm_eps="small"), "config.layer_norm_eps"),
        (lambda p: p.config.update(hidden_act="rm -rf"), "config.hidden_act"),
        (lambda p: p.config.update(model_type="gpt2"), "config.model_type"),
        (lambda p: p.linears.clear(), "linears is empty"),
        (lambda p: p.attention.update(attention="full"), "header field attention: attention must be one of"),
        (lambda p: p.attention.update(attention="bi_attention", probs="two_set"), "bi_attention already binarizes"),
        (lambda p: p.attention.pop("probs"), "attention must be an object with exactly"),
        (lambda p: p.linears.update({"pooler.dense": {"in_features": 70, "out_features": 70, "scheme": "w1a1", "bits": 1}}), "linears.pooler.dense is not a linear"),
        (lambda p: p.linears[LINEAR].update(bits=2), "bits is 2; scheme w1a1 stores 1"),
        (lambda p: p.linears[LINEAR].pop("bits"), "must be an object with exactly"),
        (lambda p: p.tensors.update({f"{LINEAR}.bias": np.zeros(3, np.float32)}), "bias' has shape \\[3\\], expected \\[70\\]"),
        (lambda p: p.tensors.update({f"{LINEAR}.extra": np.zeros(3, np.float32)}), "extra' is not one of the tensors its scheme or table format stores"),
        (lambda p: p.linears[LINEAR].update(in_features=200), "\\(in_features, out_features\\) = \\(200, 70\\)"),
        (lambda p: p.linears[LINEAR].update(in_features=True), "\\(in_features, out_features\\)"),
        (lambda p: p.linears[LINEAR].update(bogus=1), "must be an object with"),
        (lambda p: p.tensors.update({f"{LINEAR}.packed_weight": np.zeros((70, 2), np.float32)}), "packed_weight'.dtype is 'F32', expected one of \\['U64'\\]"),
        (lambda p: p.tensors.update({f"{LINEAR}.scale": np.zeros(70, np.float16)}), "scale'.dtype is 'F16'"),
        (lambda p: p.tensors.update({f"{LINEAR}.scale": np.zeros(69, np.float32)}), "scale' has shape \\[69\\], expected \\[70\\]"),
        (lambda p: p.tensors.pop(f"{LINEAR}.packed_weight"), "packed_weight' has shape None"),
        (lambda p: p.tensors.update({"embeddings.extra": np.zeros(3, np.uint64)}), "embeddings.extra'.dtype is 'U64'"),
    ],
    ids=[
        "size-type", "heads", "size-missing", "eps", "act", "model-type", "no-linears", "attention-mode",
        "attention-combination", "attention-keys", "unknown-linear",
        "bits", "no-bits", "bias-shape", "stray-tensor", "linear-shape", "linear-bool", "linear-key", "weight-dtype", "scale-dtype", "scale-shape",
        "weight-missing", "plain-dtype",
    ],
)
def test_crafted_headers_with_a_valid_checksum_are_refused(edit, message):
    with pytest.raises(PackedFormatError, match=message):
        decode_packed_model(_encoded_with(edit))


def test_missing_file(tmp_path):
    with pytest.raises(PackedFormatError, match="no such packed model file"):
        read_packed_model(tmp_path / "absent.safetensors")


def _mutations(data: bytes, rng: random.Random, count: int):
    """Byte flips (header and data), insertions, deletions, truncations and overwrites."""
    header_len = struct.unpack("<Q", data[:8])[0]
    for index in range(count):
        kind = index % 6
        position = rng.randrange(len(data))
        if kind == 0:  # a bit in the header (the JSON or its length)
            position = rng.randrange(8 + header_len)
            yield data[:position] + bytes([data[position] ^ (1 << rng.randrange(8))]) + data[position + 1 :]
        elif kind == 1:  # a bit anywhere
            yield data[:position] + bytes([data[position] ^ (1 << rng.randrange(8))]) + data[position + 1 :]
        elif kind == 2:
            yield data[:position] + bytes([rng.randrange(256)]) + data[position:]
        elif kind == 3:
            yield data[:position] + data[position + rng.randrange(1, 9) :]
        elif kind == 4:
            yield data[:position]
        else:  # a random printable character in the header, where a JSON edit would be
            position = rng.randrange(8, 8 + header_len)
            yield data[:position] + bytes([rng.randrange(32, 127)]) + data[position + 1 :]


def test_random_mutations_are_refused_or_harmless(tiny_bert_dir):
    """Any mutation of a valid packed file ends in `PackedFormatError`, or loads to exactly the
    same outputs (a mutation of the header's padding or an equivalent JSON spelling)."""
    from bitmaps_allennlp.packed.export import pack_bert
    from bitmaps_allennlp.packed.packed_bert import build_packed_bert
    from bitmaps_allennlp.token_embedders.binary_bert_embedder import BinaryBertEmbedder

    torch.manual_seed(0)
    encoder = BinaryBertEmbedder(model_name=str(tiny_bert_dir), activations="sign")
    packed, _ = pack_bert(encoder.bert)
    data = encode_packed_model(packed)
    token_ids = torch.randint(5, 60, (2, 9))

    def outputs(model_file):
        bert, head = build_packed_bert(model_file)
        with torch.no_grad():
            return bert(input_ids=token_ids).last_hidden_state, head

    expected, _ = outputs(decode_packed_model(data))
    rng = random.Random(1234)
    refused = harmless = 0
    for mutated in _mutations(data, rng, 600):
        try:
            model_file = decode_packed_model(mutated)
        except PackedFormatError:
            refused += 1
            continue
        try:
            hidden, _ = outputs(model_file)
        except PackedFormatError:
            refused += 1
            continue
        assert torch.equal(hidden, expected), "a mutated file loaded to different outputs"
        harmless += 1
    assert refused > 500  # the test mutates for real


def test_tensors_that_do_not_fit_the_config_are_refused(tiny_bert_dir):
    from bitmaps_allennlp.packed.export import pack_bert
    from bitmaps_allennlp.packed.packed_bert import build_packed_bert
    from bitmaps_allennlp.token_embedders.binary_bert_embedder import BinaryBertEmbedder

    packed, _ = pack_bert(BinaryBertEmbedder(model_name=str(tiny_bert_dir)).bert)
    packed.tensors["embeddings.LayerNorm.weight"] = np.ones(3, dtype=np.float32)
    with pytest.raises(PackedFormatError, match="'embeddings.LayerNorm.weight' has shape \\[3\\], the config implies \\[32\\]"):
        build_packed_bert(decode_packed_model(encode_packed_model(packed)))


WORD = "embeddings.word_embeddings"


def _with_int8_table(packed: PackedModelFile) -> PackedModelFile:
    packed.tensors.pop(f"{WORD}.weight")
    packed.tensors[f"{WORD}.q"] = np.arange(6 * 70, dtype=np.int64).reshape(6, 70).astype(np.int8)
    packed.tensors[f"{WORD}.step"] = np.full(6, 0.01, dtype=np.float32)
    packed.tables = {WORD: {"rows": 6, "dim": 70, "format": "int8", "bits": 8}}
    return packed


def test_an_int8_table_round_trips():
    back = decode_packed_model(encode_packed_model(_with_int8_table(_small())))
    assert back.tables == {WORD: {"rows": 6, "dim": 70, "format": "int8", "bits": 8}}
    assert back.tensors[f"{WORD}.q"].dtype == np.int8


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p: p.tables.update({"embeddings.extra": p.tables[WORD]}), "tables.embeddings.extra is not an embedding table"),
        (lambda p: p.tables[WORD].update(rows=7), "\\(rows, dim\\) = \\(7, 70\\), the config implies \\(6, 70\\)"),
        (lambda p: p.tables[WORD].update(format="int4"), "format is 'int4', expected one of \\['binary', 'int8', 'int8_col', 'int8_g64'\\]"),
        (lambda p: p.tables[WORD].update(bits=4), "bits is 4; format int8 stores 8"),
        (lambda p: p.tables[WORD].pop("bits"), "must be an object with exactly"),
        (lambda p: p.tensors.pop(f"{WORD}.step"), "step' has shape None, expected \\[6\\]"),
        (lambda p: p.tensors.update({f"{WORD}.q": np.zeros((6, 70), np.float16)}), "q'.dtype is 'F16', expected one of \\['I8'\\]"),
        (lambda p: p.tensors.update({f"{WORD}.weight": np.zeros((6, 70), np.float32)}), "weight' is not one of the tensors"),
        (lambda p: p.tensors.update({"embeddings.other": np.zeros(3, np.int8)}), "other'.dtype is 'I8'"),
    ],
    ids=["unknown-table", "rows", "format", "bits", "no-bits", "missing-step", "q-dtype", "stray-weight", "plain-int8"],
)
def test_crafted_table_entries_are_refused(edit, message):
    packed = _with_int8_table(_small())
    edit(packed)
    with pytest.raises(PackedFormatError, match=message):
        decode_packed_model(encode_packed_model(packed))
