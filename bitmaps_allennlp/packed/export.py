"""From a trained `bitmaps_masked_lm` to the tensors of a packed model file."""
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np
import torch

from allennlp.common.checks import ConfigurationError

from bitmaps_allennlp.models.masked_lm import BinaryMaskedLanguageModel
from bitmaps_allennlp.modules.quantized_embedding import QuantizedEmbedding
from bitmaps_allennlp.modules.quantized_linear import QuantizedLinear
from bitmaps_allennlp.modules.quantized_self_attention import QuantizedSelfAttention
from bitmaps_allennlp.packed.bit_packing import pack_signs
from bitmaps_allennlp.packed.file_format import PackedModelFile
from bitmaps_allennlp.packed.packed_bert import HEAD_PREFIX


@dataclass
class PartSizes:
    """Bytes of each part of the model, as stored and as fp32."""

    stored: Dict[str, int] = field(default_factory=dict)
    fp32: Dict[str, int] = field(default_factory=dict)

    def add(self, part: str, stored: int, fp32: int) -> None:
        self.stored[part] = self.stored.get(part, 0) + stored
        self.fp32[part] = self.fp32.get(part, 0) + fp32


def _numpy(tensor: torch.Tensor, fp16: bool) -> np.ndarray:
    tensor = tensor.detach().cpu()
    if fp16 and tensor.is_floating_point():
        tensor = tensor.half()
    return tensor.numpy()


# how a trained linear's input quantizer runs in the packed model
PACKED_ACTIVATIONS = {"real": "real", "sign": "binary", "int8": "int8"}


def _packed_activations(name: str, module: QuantizedLinear, activations: Optional[str]) -> str:
    if module.quantization.weights != "binary":
        raise ConfigurationError(
            f"bitmaps-export: {name} has {module.quantization.weights} weights; the packed format holds 1-bit weights only"
        )
    if activations is not None:
        return activations
    if module.activations not in PACKED_ACTIVATIONS:
        raise ConfigurationError(
            f"bitmaps-export: {name} was trained with {module.activations!r} activations; packed kernels "
            f"run {sorted(PACKED_ACTIVATIONS)} (W1A32, XNOR W1A1 and W1A8)"
        )
    return PACKED_ACTIVATIONS[module.activations]


def _check_exportable(bert) -> None:
    for name, module in bert.named_modules():
        if isinstance(module, QuantizedSelfAttention) and not module.full_precision:
            raise ConfigurationError(
                f"bitmaps-export: {name} quantizes attention (bi_attention or quantized Q/K/V/probabilities); "
                "the packed model runs full-precision softmax attention"
            )
        if isinstance(module, QuantizedEmbedding):
            raise ConfigurationError(f"bitmaps-export: {name} is a binarized embedding table, which the packed format does not hold yet")


def pack_bert(bert, activations: Optional[str] = None, fp16: bool = False) -> "tuple[PackedModelFile, PartSizes]":
    """Every `QuantizedLinear` (binary weights) of a `transformers` BERT encoder becomes uint64
    sign words plus fp32 per-channel scales (and its bias); every other tensor is kept (as fp16
    when `fp16`). The packed model feeds each linear as it was trained (`real` inputs, or `sign`
    inputs as XNOR W1A1) unless `activations` (`real` or `binary`) overrides that for all."""
    _check_exportable(bert)
    tensors: Dict[str, np.ndarray] = {}
    linears: Dict[str, Dict] = {}
    sizes = PartSizes()
    for name, module in bert.named_modules():
        if not isinstance(module, QuantizedLinear):
            continue
        linears[name] = {
            "in_features": module.in_features,
            "out_features": module.out_features,
            "activations": _packed_activations(name, module, activations),
        }
        signs, scale = module.weight_quantizer.binary_parts(module.weight)
        words = pack_signs(signs).numpy().view(np.uint64)
        scale = scale.float().cpu().numpy()
        tensors[f"{name}.packed_weight"], tensors[f"{name}.scale"] = words, scale
        sizes.add("binarized linear weights", words.nbytes + scale.nbytes, module.weight.numel() * 4)
        if module.bias is not None:
            tensors[f"{name}.bias"] = _numpy(module.bias, fp16)
            sizes.add("biases of binarized linears", tensors[f"{name}.bias"].nbytes, module.bias.numel() * 4)
    if not linears:
        raise ConfigurationError(
            "bitmaps-export: the model has no binarized linear (was it trained with binarize: false?)"
        )
    for key, value in bert.state_dict().items():
        if key.rpartition(".")[0] in linears or key.rpartition(".")[0].rpartition(".")[0] in linears:
            continue
        tensors[key] = _numpy(value, fp16)
        part = "embeddings" if key.startswith("embeddings.") and "LayerNorm" not in key else "other (LayerNorm, biases, ...)"
        sizes.add(part, tensors[key].nbytes, value.numel() * 4)
    return PackedModelFile(tensors=tensors, linears=linears, config=bert.config.to_dict()), sizes


def pack_masked_lm(model: BinaryMaskedLanguageModel, fp16: bool = False) -> "tuple[PackedModelFile, PartSizes]":
    """The encoder as `pack_bert` packs it, plus the MLM head."""
    if not isinstance(model, BinaryMaskedLanguageModel):
        raise ConfigurationError(
            f"bitmaps-export packs bitmaps_masked_lm models, got {type(model).__name__}"
        )
    if isinstance(model._head.dense, QuantizedLinear):
        raise ConfigurationError("bitmaps-export: a binarized masked-LM head is not in the packed format yet")
    packed, sizes = pack_bert(model._encoder.bert, fp16=fp16)
    for key, value in model._head.state_dict().items():
        packed.tensors[HEAD_PREFIX + key] = _numpy(value, fp16)
        sizes.add("masked-LM head (decoder tied to embeddings)", packed.tensors[HEAD_PREFIX + key].nbytes, value.numel() * 4)
    return packed, sizes
