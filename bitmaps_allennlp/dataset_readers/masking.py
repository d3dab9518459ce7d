"""
BERT's masking rule (Devlin et al., 2019, as in Google's create_pretraining_data.py): choose
max(1, round(p * n)) maskable positions; of those, 80% become [MASK], 10% a random token, 10%
stay as they are. Only the chosen positions are predicted.
"""
import zlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class MaskingRule:
    mask_token_id: int
    random_token_ids: np.ndarray  # ids a "random replacement" draws from (no special tokens)
    mask_probability: float = 0.15
    replace_with_mask: float = 0.8
    replace_with_random: float = 0.1

    def apply(
        self, token_ids: np.ndarray, maskable: np.ndarray, rng: np.random.Generator
    ) -> "MaskedBlock":
        candidates = np.flatnonzero(maskable)
        inputs = token_ids.copy()
        positions = np.zeros(len(token_ids), dtype=bool)
        if len(candidates) == 0:
            return MaskedBlock(inputs, positions)
        count = max(1, int(round(self.mask_probability * len(candidates))))
        chosen = rng.choice(candidates, size=count, replace=False)
        positions[chosen] = True
        action = rng.random(count)
        to_mask = chosen[action < self.replace_with_mask]
        to_random = chosen[
            (action >= self.replace_with_mask)
            & (action < self.replace_with_mask + self.replace_with_random)
        ]
        inputs[to_mask] = self.mask_token_id
        inputs[to_random] = rng.choice(self.random_token_ids, size=len(to_random))
        return MaskedBlock(inputs, positions)


@dataclass(frozen=True)
class MaskedBlock:
    input_ids: np.ndarray
    masked_positions: np.ndarray


def block_rng(seed: int, block_index: int, token_ids: Sequence[int]) -> np.random.Generator:
    """A generator that depends only on the seed, the block's index in its file and its content,
    so evaluation masks are identical across runs, worker counts and distributed shards."""
    digest = zlib.crc32(np.asarray(token_ids, dtype=np.int64).tobytes())
    return np.random.default_rng([seed, block_index, digest])
