"""How many bytes the quantized parts of a model take in their packed form."""
from dataclasses import dataclass
from typing import Union

from torch import nn

from bitmaps_allennlp.modules.quantized_embedding import QuantizedEmbedding
from bitmaps_allennlp.modules.quantized_linear import QuantizedLinear

# bits each weight takes when packed into 64-bit words: a sign bit, or a 2-bit ternary code
# (log2(3) = 1.58 bits is the entropy bound; 2-bit packing is what kernels such as bitnet.cpp's
# I2_S use); an int8 table's bytes, as the packed `int8` table format stores them
PACKED_BITS = {"binary": 1, "ternary": 2, "int8": 8}


@dataclass
class QuantizedSize:
    modules: int = 0
    weights: int = 0
    packed_bytes: int = 0
    fp32_bytes: int = 0

    @property
    def ratio(self) -> float:
        return self.fp32_bytes / self.packed_bytes if self.packed_bytes else float("nan")


def _packed_bytes(module: Union[QuantizedLinear, QuantizedEmbedding]) -> int:
    rows, cols = module.weight.shape
    bits = PACKED_BITS[module.quantization.weights]
    words_per_row = (cols * bits + 63) // 64
    scales = 1 if module.quantization.weight_scale == "per_tensor" else rows
    return rows * words_per_row * 8 + scales * 4


def quantized_size(model: nn.Module) -> QuantizedSize:
    """Packed bytes (weights plus fp32 scales) of every quantized linear and embedding table,
    against their fp32 bytes. Biases and the activation quantizers' few scalars are not
    counted: they stay full precision either way."""
    size = QuantizedSize()
    for module in model.modules():
        if isinstance(module, (QuantizedLinear, QuantizedEmbedding)):
            size.modules += 1
            size.weights += module.weight.numel()
            size.packed_bytes += _packed_bytes(module)
            size.fp32_bytes += module.weight.numel() * 4
    return size
