from typing import Optional

import torch
from torch import nn

from bitmaps_allennlp.modules.sign_ste import sign_ste
from bitmaps_allennlp.modules.weight_scale import check_weight_scale, mean_abs_scale


class BinaryLinear(nn.Module):
    """
    A linear layer whose weights are binarized in the forward pass: `W~ = alpha * sign(W)` with one
    scale per output channel. The latent full-precision `weight` is what the optimizer updates
    (BinaryConnect); the +-1 matrix and `alpha` are all that inference needs.

    Parameter names match `torch.nn.Linear` (`weight`, `bias`) so a full-precision checkpoint loads
    into a binarized model unchanged: that is the data-free conversion.

    # Parameters

    in_features : `int`
    out_features : `int`
    bias : `bool`, optional (default = `True`)
    weight_scale : `str`, optional (default = `"mean_abs"`)
        `"mean_abs"`: alpha = mean |W| per output channel, recomputed every step (XNOR-Net/BWN).
        `"learned"`: alpha is a parameter, initialised to mean |W| of the initial weights.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        weight_scale: str = "mean_abs",
    ) -> None:
        super().__init__()
        check_weight_scale(weight_scale)
        self.in_features = in_features
        self.out_features = out_features
        self.weight_scale = weight_scale
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.scale: Optional[nn.Parameter] = None
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        if weight_scale == "learned":
            self.scale = nn.Parameter(mean_abs_scale(self.weight.detach()).clone())

    @classmethod
    def from_linear(cls, linear: nn.Linear, weight_scale: str = "mean_abs") -> "BinaryLinear":
        """Data-free conversion: copy the full-precision weights as the latent weights."""
        binary = cls(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            weight_scale=weight_scale,
        )
        binary.to(device=linear.weight.device, dtype=linear.weight.dtype)
        with torch.no_grad():
            binary.weight.copy_(linear.weight)
            if linear.bias is not None:
                binary.bias.copy_(linear.bias)
            if binary.scale is not None:
                binary.scale.copy_(mean_abs_scale(linear.weight))
        return binary

    def channel_scale(self) -> torch.Tensor:
        """alpha, shape (out_features, 1)."""
        return self.scale if self.scale is not None else mean_abs_scale(self.weight)

    def binarized_weight(self) -> torch.Tensor:
        """The weight the forward pass uses: alpha * sign(W), with the straight-through gradient."""
        return self.channel_scale() * sign_ste(self.weight)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(inputs, self.binarized_weight(), self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, weight_scale={self.weight_scale}"
        )
