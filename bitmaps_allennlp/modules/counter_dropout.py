"""
Dropout whose mask comes from a counter-based generator, for layers `torch.compile`d on a CPU.

Inductor's CPU code draws each random number of `nn.Dropout` with its own Philox-4x32-10
call, element by element, out of its vector loops: about 20 ns an element on the project's
2-core machines. Over a MiniLM student's attention probabilities and hidden states that was
about a quarter of a compiled distillation step (README, "Training throughput").

`CounterDropout` computes the same thing as `nn.Dropout` (each element kept with probability
1 - p, kept elements scaled by 1 / (1 - p)); only the generator differs. Element i of a call
takes the high 32 bits of SplitMix64's output for counter i (Steele, Lea and Flood, "Fast
splittable pseudorandom number generators", OOPSLA 2014: state_i = seed + i * gamma, then
Stafford's 64-bit mix), which passes BigCrush. That is a handful of 64-bit integer operations
that inductor fuses into the surrounding vector loop. The drop probability is
round(p * 2**32) / 2**32, within 2**-33 of p (torch's own draws floats with 24 random bits).

The seed lives in a buffer that `reseed` refills from torch's generator, outside the compiled
graph (drawn inside, inductor would recompute it for every vector of the loop): whoever runs
the compiled layers calls `reseed` before each training forward (`bitmaps_binary_bert` does), so
runs stay reproducible under `torch.manual_seed` as they are with `nn.Dropout`. Eager execution
gives the same bits as compiled execution, but at many passes over memory: use `nn.Dropout`
where nothing is compiled.
"""
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

# SplitMix64's constants (Steele et al., 2014; Java's SplittableRandom), as signed int64
_GOLDEN_GAMMA = 0x9E3779B97F4A7C15 - (1 << 64)
_MIX_MULTIPLIERS = (0xBF58476D1CE4E5B9 - (1 << 64), 0x94D049BB133111EB - (1 << 64))
_MIX_SHIFTS = (30, 27, 31)


def _shift_right_logical(z: torch.Tensor, bits: int) -> torch.Tensor:
    # torch's >> on int64 is arithmetic: clear the copies of the sign bit
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def splitmix64_high_bits(seed: torch.Tensor, gamma: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """
    The high 32 bits (as int64 in [0, 2**32)) of SplitMix64's outputs for counters
    0 .. numel - 1, laid out in `shape`. `seed` and `gamma` are 0-d int64 tensors; `gamma` is
    `_GOLDEN_GAMMA` held in a tensor, because inductor folds a Python-int product into its
    index arithmetic, which overflows int64.
    """
    counters = torch.arange(shape.numel(), dtype=torch.int64, device=seed.device).view(shape)
    z = seed + counters * gamma  # wraps modulo 2**64, as SplitMix64's state does
    z = (z ^ _shift_right_logical(z, _MIX_SHIFTS[0])) * _MIX_MULTIPLIERS[0]
    z = (z ^ _shift_right_logical(z, _MIX_SHIFTS[1])) * _MIX_MULTIPLIERS[1]
    z = z ^ _shift_right_logical(z, _MIX_SHIFTS[2])
    return _shift_right_logical(z, 32)


class CounterDropout(nn.Module):
    """
    `nn.Dropout` with a SplitMix64 mask, for compiled CPU layers (see the module docstring).

    # Parameters

    p : `float`
        The probability of zeroing an element, in [0, 1).
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"CounterDropout: p must be in [0, 1), got {p}")
        self.p = p
        self.threshold = round(p * 2**32)  # keep an element when its 32 bits are >= this
        # not persistent: no state-dict keys, so archives and checkpoints are those of nn.Dropout
        self.register_buffer("seed", torch.zeros((), dtype=torch.int64), persistent=False)
        self.register_buffer("gamma", torch.tensor(_GOLDEN_GAMMA, dtype=torch.int64), persistent=False)

    @classmethod
    def like(cls, dropout: nn.Dropout) -> "CounterDropout":
        """A `CounterDropout` with `dropout`'s probability and training mode."""
        replacement = cls(dropout.p)
        replacement.train(dropout.training)
        return replacement

    def reseed(self) -> None:
        """Draw this module's next seed from torch's default generator."""
        self.seed.copy_(torch.randint(-(2**63), 2**63 - 1, (), dtype=torch.int64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        # `checkpoint` tags the mask's nodes must-recompute, so the compiled backward pass
        # recomputes the mask from the seed. Saved, it is a bool tensor that inductor writes
        # about an element at a time; and AOTAutograd recomputes unasked only ops on its
        # allowlist, which has no `bitwise_xor`/`bitwise_and` (docs/training-throughput.md).
        keep = checkpoint(self._keep, self.seed, self.gamma, x.shape, use_reentrant=False)
        return x * keep * (1.0 / (1.0 - self.p))

    def _keep(self, seed, gamma, shape):
        return splitmix64_high_bits(seed, gamma, shape) >= self.threshold

    def extra_repr(self) -> str:
        return f"p={self.p}"
