"""
Sign with a straight-through estimator.

Bit convention used everywhere in Bitmaps: `sign(0) = +1`, so a binarized tensor holds exactly
two values and packs into one bit per entry (bit 1 means -1, see the export format).
"""
import torch


class _ClippedSignSTE(torch.autograd.Function):
    """Forward: sign (with sign(0) = +1). Backward: the clipped identity (hardtanh's derivative),
    so latent weights that drifted beyond +-1 stop receiving gradient, as in BinaryConnect."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return binary_sign(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad_output * (x.abs() <= 1).to(grad_output.dtype)


def binary_sign(x: torch.Tensor) -> torch.Tensor:
    """`torch.sign` maps 0 to 0, which is not a 1-bit value; this maps it to +1."""
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


def sign_ste(x: torch.Tensor) -> torch.Tensor:
    """Binarize `x` to +-1 with the clipped straight-through gradient."""
    return _ClippedSignSTE.apply(x)
