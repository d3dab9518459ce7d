"""
The 1-bit layout, documented once and used by the file format, the reference implementation
and the native kernels:

- one bit per value, **bit 1 means -1**, bit 0 means +1 (so sign(0) = +1, as in training);
- a row of K values fills ceil(K / 64) 64-bit words, value k at bit (k % 64) of word k // 64
  (least significant bit first); words are stored little-endian;
- the last word of a row is padded with **zero bits** (+1). Padding bits are equal in both operands
  of an XNOR dot product, so `dot = K - 2 * popcount(a xor b)` holds with the true K, not the
  padded one.

Torch has no unsigned 64-bit arithmetic, so packed words travel as int64 tensors holding the same
bits (the two's-complement view of the uint64 words).
"""
import torch

from bitmaps_runtime.formats import BIT_CONVENTION, TERNARY_PLANES, WORD_BITS, words_per_row  # noqa: F401 (defined there)

_SHIFTS = torch.arange(WORD_BITS, dtype=torch.int64)


def pack_signs(values: torch.Tensor) -> torch.Tensor:
    """`(rows, K)` real values -> `(rows, ceil(K/64))` int64 words of their signs."""
    if values.dim() != 2:
        raise ValueError(f"pack_signs expects a 2-d tensor, got shape {tuple(values.shape)}")
    rows, k = values.shape
    padded = torch.zeros(rows, words_per_row(k) * WORD_BITS, dtype=torch.int64)
    padded[:, :k] = (values.detach().cpu() < 0).to(torch.int64)
    # distinct powers of two never carry, so the int64 sum wraps exactly like a uint64 OR
    return (padded.view(rows, -1, WORD_BITS) << _SHIFTS).sum(dim=-1)


def unpack_signs(words: torch.Tensor, in_features: int, dtype=torch.float32) -> torch.Tensor:
    """`(rows, W)` int64 words -> `(rows, in_features)` of +-1."""
    if words.dim() != 2 or words.size(1) != words_per_row(in_features):
        raise ValueError(
            f"packed words of shape {tuple(words.shape)} do not hold rows of {in_features} values"
        )
    bits = (words.unsqueeze(-1) >> _SHIFTS.to(words.device)) & 1
    bits = bits.reshape(words.size(0), -1)[:, :in_features]
    return (1 - 2 * bits).to(dtype)


# Ternary weights t in {-1, 0, +1} are two sign planes u, v of this same layout, with
# t = (u + v) / 2: u = +1 where t >= 0, v = +1 where t > 0 (so t = 1: u = v = +1; t = 0:
# u = +1, v = -1; t = -1: u = v = -1). Two bits per weight, like bitnet.cpp's I2_S, and each plane
# is an ordinary binary matrix: every binary kernel on every path runs ternary weights exactly, as
# x . t = (x . u + x . v) / 2, with no kernel of its own.


def pack_ternary(levels: torch.Tensor) -> torch.Tensor:
    """`(rows, K)` levels in {-1, 0, +1} -> `(2, rows, ceil(K/64))` int64 words: planes u, v."""
    ones = torch.ones_like(levels)
    return torch.stack([pack_signs(torch.where(levels >= 0, ones, -ones)), pack_signs(torch.where(levels > 0, ones, -ones))])


def unpack_ternary(planes: torch.Tensor, in_features: int, dtype=torch.float32) -> torch.Tensor:
    """`(2, rows, W)` planes -> `(rows, in_features)` levels in {-1, 0, +1}."""
    if planes.dim() != 3 or planes.size(0) != TERNARY_PLANES:
        raise ValueError(f"ternary planes must have shape (2, rows, words), got {tuple(planes.shape)}")
    return (unpack_signs(planes[0], in_features, dtype) + unpack_signs(planes[1], in_features, dtype)) / 2
