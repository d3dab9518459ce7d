"""The sign every binarized value goes through: sign(0) = +1, so a binarized tensor holds exactly
two values and packs into one bit each (bit 1 means -1, `bit_packing`). The native kernels test
`x < 0` for the sign bit, which is the same rule (and sends -0.0 to +1, as `x >= 0` does here)."""
import torch


def binary_sign(x: torch.Tensor) -> torch.Tensor:
    """+1 where x >= 0, -1 elsewhere (`torch.sign` would map 0 to 0, which is not a 1-bit value)."""
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)
