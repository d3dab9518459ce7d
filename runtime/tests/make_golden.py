#!/usr/bin/env python
"""
Writes runtime/tests/golden/tiny_bit_w1a1.bin (int8 tables) or, with `--embeddings int8_col`,
tiny_bit_w1a1_int8_col.bin (int8 tables with column scales): the steps that build a tiny packed encoder in the C++
core (as `PackedEncoder` records them), a batch of token ids with padding, and the last hidden
states that the torch reference (the packed torch modules, `build_packed_bert`) computes for it.
`runtime/tests/test_encoder_golden.cpp` replays the steps with the C++ model builder on every
kernel path, on x86 and under qemu on aarch64, and compares. Run on x86 with the full environment:

    .venv/bin/python runtime/tests/make_golden.py [--embeddings int8_col]

The model: BiT stage 2's knobs (elastic inputs, two-set into FFN out, elastic Q/K/V, two-set
attention weights: the XNOR-popcount paths), int8 embedding tables, hidden 32, 2 layers.
(A fixture written before `int8_col` existed replays too: its model_table steps have no column.)

Format (little-endian): b"BMGOLD1\\n", u32 steps, each step a string (the function) and a u32
count of tagged values; then three tagged arrays: token ids, mask, expected hidden states. Tags:
b"i" int64, b"d" float64, b"s" u32 length + UTF-8, b"n" none, b"a" dtype character
(numpy's: f, e, b, Q, q, i) + u32 dims + u64 each + the C-order bytes.
"""
import argparse
import struct
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bitmaps_allennlp.packed.packed_bert import build_packed_bert  # noqa: E402
from bitmaps_runtime.encoder import PackedEncoder  # noqa: E402
from tests.runtime.test_encoder import _inputs, _model, _packed  # noqa: E402

GOLDEN = Path(__file__).resolve().parent / "golden"
FIXTURES = {"int8": GOLDEN / "tiny_bit_w1a1.bin", "int8_col": GOLDEN / "tiny_bit_w1a1_int8_col.bin"}


def _value(value) -> bytes:
    if value is None:
        return b"n"
    if isinstance(value, (bool, int, np.integer)):
        return b"i" + struct.pack("<q", int(value))
    if isinstance(value, (float, np.floating)):
        return b"d" + struct.pack("<d", float(value))
    if isinstance(value, str):
        data = value.encode()
        return b"s" + struct.pack("<I", len(data)) + data
    array = np.ascontiguousarray(value)
    array = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return b"a" + array.dtype.char.encode() + struct.pack("<I", array.ndim) + b"".join(struct.pack("<Q", d) for d in array.shape) + array.tobytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embeddings", choices=sorted(FIXTURES), default="int8")
    embeddings = parser.parse_args().embeddings
    out_path = FIXTURES[embeddings]
    bert, head = _model("bit_w1a1", hidden=32, heads=2, layers=2, vocab=100)
    packed = _packed(bert, head, embeddings=embeddings)
    encoder = PackedEncoder(packed)
    ids, mask = _inputs(100, batch=3, seq=21)
    rebuilt, _ = build_packed_bert(packed)
    with torch.no_grad():
        expected = rebuilt(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()
    # the runtime on this machine agrees before the golden is written
    got = encoder.hidden_states(ids.numpy(), mask.numpy())
    real = mask.numpy().astype(bool)
    assert np.abs(got - expected)[real].max() < 1e-4, np.abs(got - expected)[real].max()
    out = bytearray(b"BMGOLD1\n")
    out += struct.pack("<I", len(encoder.steps))
    for function, args in encoder.steps:
        out += _value(function) + struct.pack("<I", len(args))
        for arg in args:
            out += _value(arg)
    out += _value(ids.numpy().astype(np.int64)) + _value(mask.numpy().astype(np.int32)) + _value(expected.astype(np.float32))
    out_path.parent.mkdir(exist_ok=True)
    out_path.write_bytes(bytes(out))
    print(f"wrote {out_path} ({len(out)} bytes, {len(encoder.steps)} steps)")


if __name__ == "__main__":
    main()
