"""From a trained `bitmaps_masked_lm` to the tensors of a packed model file."""
from dataclasses import dataclass, field
from typing import Dict

import numpy as np
import torch

from allennlp.common.checks import ConfigurationError

from bitmaps_allennlp.models.masked_lm import BinaryMaskedLanguageModel
from bitmaps_allennlp.modules.binary_linear import BinaryLinear
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


def pack_bert(bert, activations: str = "real", fp16: bool = False) -> "tuple[PackedModelFile, PartSizes]":
    """Every `BinaryLinear` of a `transformers` BERT encoder becomes uint64 sign words plus fp32
    per-channel scales (and its bias); every other tensor is kept (as fp16 when `fp16`).
    `activations` records how the packed model feeds those linears: `real` (as trained here)
    or `binary` (XNOR-Net W1A1)."""
    tensors: Dict[str, np.ndarray] = {}
    linears: Dict[str, Dict] = {}
    sizes = PartSizes()
    for name, module in bert.named_modules():
        if not isinstance(module, BinaryLinear):
            continue
        linears[name] = {
            "in_features": module.in_features,
            "out_features": module.out_features,
            "activations": activations,
        }
        words = pack_signs(module.weight).numpy().view(np.uint64)
        scale = module.channel_scale().detach().reshape(-1).float().cpu().numpy()
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
        if key.rpartition(".")[0] in linears:
            continue
        tensors[key] = _numpy(value, fp16)
        part = "embeddings" if key.startswith("embeddings.") and "LayerNorm" not in key else "other (LayerNorm, biases, ...)"
        sizes.add(part, tensors[key].nbytes, value.numel() * 4)
    return PackedModelFile(tensors=tensors, linears=linears, config=bert.config.to_dict()), sizes


def pack_masked_lm(model: BinaryMaskedLanguageModel, fp16: bool = False) -> "tuple[PackedModelFile, PartSizes]":
    """The encoder as `pack_bert` packs it (real activations, as trained), plus the MLM head."""
    if not isinstance(model, BinaryMaskedLanguageModel):
        raise ConfigurationError(
            f"bitmaps-export packs bitmaps_masked_lm models, got {type(model).__name__}"
        )
    packed, sizes = pack_bert(model._encoder.bert, activations="real", fp16=fp16)
    for key, value in model._head.state_dict().items():
        packed.tensors[HEAD_PREFIX + key] = _numpy(value, fp16)
        sizes.add("masked-LM head (decoder tied to embeddings)", packed.tensors[HEAD_PREFIX + key].nbytes, value.numel() * 4)
    return packed, sizes
