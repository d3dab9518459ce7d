import torch
from torch import nn

from bitmaps_allennlp.modules.activation_quantizer import Int8AbsMax, build_activation_quantizer
from bitmaps_allennlp.modules.component_quantization import ComponentQuantization
from bitmaps_allennlp.modules.weight_quantizer import INTEGER_LEVEL_WEIGHTS, WeightQuantizer
from bitmaps_allennlp.quantization.integer_product import integer_product


class QuantizedLinear(nn.Module):
    """
    A linear layer whose weights (binary or ternary, see `WeightQuantizer`) and inputs (see
    `activation_quantizer`) are quantized in the forward pass. The latent full-precision `weight`
    is what the optimizer updates (BinaryConnect); the low-bit matrix, its scales and the
    activation quantizer's parameters are all inference needs.

    Parameter names match `torch.nn.Linear` (`weight`, `bias`) so a full-precision checkpoint loads
    into a quantized model unchanged: that is the data-free conversion.

    # Parameters

    in_features : `int`
    out_features : `int`
    bias : `bool`, optional (default = `True`)
    quantization : `ComponentQuantization`, optional (default = binary weights, mean |W| scale,
        real activations: BWN / XNOR-Net weights)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        quantization: ComponentQuantization = ComponentQuantization(),
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.quantization = quantization
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        self.weight_quantizer = WeightQuantizer.for_component(out_features, quantization)
        self.input_quantizer = build_activation_quantizer(quantization.activations, quantization.estimator)

    @classmethod
    def from_linear(
        cls, linear: nn.Linear, quantization: ComponentQuantization = ComponentQuantization()
    ) -> "QuantizedLinear":
        """Data-free conversion: copy the full-precision weights as the latent weights."""
        quantized = cls(
            linear.in_features, linear.out_features, bias=linear.bias is not None, quantization=quantization
        )
        quantized.to(device=linear.weight.device, dtype=linear.weight.dtype)
        with torch.no_grad():
            quantized.weight.copy_(linear.weight)
            if linear.bias is not None:
                quantized.bias.copy_(linear.bias)
        return quantized

    @property
    def activations(self) -> str:
        """The input quantizer's registered mode, which (with the weights) names the packed scheme."""
        return self.input_quantizer.mode

    def channel_scale(self) -> torch.Tensor:
        """The weight scale, shape (out_features, 1) or (1, 1) for a per-tensor scale."""
        return self.weight_quantizer.scale_of(self.weight)

    def quantized_weight(self) -> torch.Tensor:
        """The weight the forward pass uses, with the straight-through gradient."""
        return self.weight_quantizer(self.weight)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.quantization.weights == "binary" and self.input_quantizer.one_bit:
            return self._one_bit_product(inputs)
        if self.quantization.weights in INTEGER_LEVEL_WEIGHTS and isinstance(self.input_quantizer, Int8AbsMax):
            return self._int8_product(inputs)
        inputs, weight = self.input_quantizer(inputs), self.quantized_weight()
        if self.bias is not None and torch.compiler.is_compiling():
            # inductor keeps a CPU addmm, which first copies the bias into every output row;
            # added after the product, the bias fuses into the next elementwise kernel instead
            return nn.functional.linear(inputs, weight) + self.bias
        return nn.functional.linear(inputs, weight, self.bias)

    def _one_bit_product(self, inputs: torch.Tensor) -> torch.Tensor:
        """1-bit weights and 1-bit inputs (sign, elastic, two-set): the integer dot products of
        the levels, exact in float32, then `dots * (input scale * weight scale) + bias`, which is
        what the packed kernels compute (XNOR-popcount and their epilogue). Multiplying scaled
        values instead rounds every term, and a W1A1 network turns each last-bit difference next
        to zero into a flipped sign downstream: its packed export could not reproduce it."""
        levels_x, scale_x = self.input_quantizer.parts(inputs)
        levels_w, scale_w = self.weight_quantizer.binary_levels(self.weight)
        dots = integer_product(levels_x, levels_w, levels_x, levels_w)
        out = dots * (scale_x * scale_w.reshape(-1))
        return out if self.bias is None else out + self.bias

    def _int8_product(self, inputs: torch.Tensor) -> torch.Tensor:
        """int8 inputs against binary or ternary weights (W1A8, W1.58A8): `(dots * step) * scale
        + bias` with the exact integer dot products, the packed kernels' epilogue, and the
        gradients of `linear(q * step, scale * levels)` (`integer_product`)."""
        x_value, x_levels, step = self.input_quantizer.integer_parts(inputs)
        w_value, w_levels, w_scale = self.weight_quantizer.integer_parts(self.weight)
        out = integer_product(x_value, w_value, x_levels, w_levels, step, w_scale.reshape(-1))
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, activations={self.activations}"
        )
