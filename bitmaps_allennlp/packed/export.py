"""From a trained encoder and head to the tensors of a packed model file. (The packed layer
knows nothing of the AllenNLP models: `commands/packed_archive.py` unwraps a trained archive.)"""
import logging
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np
import torch

from allennlp.common.checks import ConfigurationError

from bitmaps_allennlp.modules.quantized_embedding import QuantizedEmbedding
from bitmaps_allennlp.modules.quantized_linear import QuantizedLinear
from bitmaps_allennlp.modules.quantized_self_attention import QuantizedSelfAttention
from bitmaps_allennlp.packed.file_format import PackedModelFile
from bitmaps_allennlp.packed.packed_bert import HEAD_PREFIX
from bitmaps_allennlp.packed.schemes import TABLE_FORMATS, TRAINED_TABLE_FORMATS, PackedScheme, UnknownScheme, scheme_for, scheme_named

logger = logging.getLogger(__name__)


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


def _scheme(name: str, module: QuantizedLinear, override: Optional[str]) -> PackedScheme:
    if override is not None:
        scheme = scheme_named(override)
        if scheme.weights != module.quantization.weights:
            raise ConfigurationError(
                f"{name} has {module.quantization.weights} weights; scheme {scheme.name} holds {scheme.weights} weights"
            )
        return scheme
    try:
        return scheme_for(module.quantization.weights, module.activations)
    except UnknownScheme as error:
        raise ConfigurationError(f"{name}: {error}") from None


def _attention_knobs(bert) -> Dict[str, str]:
    """The attention quantization every layer shares (`attention` entry of the file)."""
    knobs = {
        (module.attention, module.attention_activations, module.attention_probs)
        for module in bert.modules()
        if isinstance(module, QuantizedSelfAttention)
    } or {("softmax", "real", "real")}
    if len(knobs) != 1:
        raise ConfigurationError(f"the layers quantize attention differently ({sorted(knobs)})")
    attention, activations, probs = knobs.pop()
    return {"attention": attention, "activations": activations, "probs": probs}


def _check_exportable(bert) -> None:
    for name, module in bert.named_modules():
        if isinstance(module, QuantizedEmbedding) and module.quantization.weights not in TRAINED_TABLE_FORMATS:
            raise ConfigurationError(
                f"{name} is a {module.quantization.weights} embedding table; the packed "
                f"table formats are {sorted(TABLE_FORMATS)} (binary and int8 tables as trained, the int8 "
                "formats as an option)"
            )


# `--embeddings`: how the word and position tables are stored unless they were trained quantized
# (the int8 ones are TABLE_FORMATS rows). Default int8 (a step per row): the smallest file; the
# tied decoder's rounding costs 0.1-0.4% of PTB perplexity. int8_col (the same size) halves that
# on models with real or 8-bit activations but scored worse on a W1A1 model, whose perplexity
# moves by tenths of a percent under any change of the tables (fp16 included); int8_g64 costs 5%
# more file, fp16 twice the file (README, packed parity). Tables trained int8 (`weights: "int8"`)
# are stored as trained, which gives the source's perplexity at int8's size.
EMBEDDING_OPTIONS = ("int8", "int8_col", "int8_g64", "fp16", "fp32")
DEFAULT_EMBEDDINGS = "int8"
_OPTION_TABLES = ("embeddings.word_embeddings", "embeddings.position_embeddings")


def pack_bert(
    bert, scheme: Optional[str] = None, fp16: bool = False, embeddings: str = DEFAULT_EMBEDDINGS
) -> "tuple[PackedModelFile, PartSizes]":
    """Every `QuantizedLinear` of a `transformers` BERT encoder is stored as the packed scheme
    (`packed.schemes`) of the quantization it was trained with, or as `scheme` for all (e.g.
    `w1a1` to benchmark binary weights trained with real inputs). Embedding tables trained
    binarized or int8 (`weights: "int8"`) are stored as trained (`TRAINED_TABLE_FORMATS`); the word and position tables otherwise as
    `embeddings` says (`int8_col`, `int8` or `int8_g64`: that `TABLE_FORMATS` row, or plain fp16 / fp32). Every other tensor
    is kept (as fp16 when `fp16`)."""
    if embeddings not in EMBEDDING_OPTIONS:
        raise ConfigurationError(f"embeddings must be one of {list(EMBEDDING_OPTIONS)}, got {embeddings!r}")
    _check_exportable(bert)
    tensors: Dict[str, np.ndarray] = {}
    linears: Dict[str, Dict] = {}
    sizes = PartSizes()
    for name, module in bert.named_modules():
        if isinstance(module, QuantizedLinear):
            _pack_linear(name, module, scheme, fp16, tensors, linears, sizes)
    if not linears:
        raise ConfigurationError(
            "the model has no binarized linear (was it trained with binarize: false?)"
        )
    tables = _pack_tables(bert, embeddings, tensors, sizes)
    for key, value in bert.state_dict().items():
        owner = key.rpartition(".")[0]
        if owner in linears or owner.rpartition(".")[0] in linears or owner in tables or owner.rpartition(".")[0] in tables:
            continue
        if key.endswith("_quantizer.initialized"):
            continue  # a training-time flag; a loaded quantizer is initialised by definition
        plain_fp16 = fp16 or (embeddings == "fp16" and owner in _OPTION_TABLES)
        tensors[key] = _numpy(value, plain_fp16)
        part = "embeddings" if key.startswith("embeddings.") and "LayerNorm" not in key else "other (LayerNorm, biases, ...)"
        sizes.add(part, tensors[key].nbytes, value.numel() * 4)
    packed = PackedModelFile(
        tensors=tensors, linears=linears, config=bert.config.to_dict(), tables=tables, attention=_attention_knobs(bert)
    )
    return packed, sizes


def _pack_linear(name: str, module: QuantizedLinear, scheme: Optional[str], fp16: bool, tensors, linears, sizes) -> None:
    chosen = _scheme(name, module, scheme)
    linears[name] = {
        "in_features": module.in_features,
        "out_features": module.out_features,
        "scheme": chosen.name,
        "bits": chosen.bits_per_weight,
    }
    with torch.no_grad():
        stored = chosen.pack(module)
    for role, array in stored.items():
        tensors[f"{name}.{role}"] = array
    sizes.add("binarized linear weights", sum(a.nbytes for a in stored.values()), module.weight.numel() * 4)
    if module.bias is not None:
        tensors[f"{name}.bias"] = _numpy(module.bias, fp16)
        sizes.add("biases of binarized linears", tensors[f"{name}.bias"].nbytes, module.bias.numel() * 4)


def _pack_tables(bert, embeddings: str, tensors: Dict[str, np.ndarray], sizes: PartSizes) -> Dict[str, Dict]:
    tables: Dict[str, Dict] = {}
    rounded = []  # fp32-trained tables that the export rounds
    for name in _OPTION_TABLES + ("embeddings.token_type_embeddings",):
        module = bert.get_submodule(name)
        with torch.no_grad():
            if isinstance(module, QuantizedEmbedding):  # as trained, whatever --embeddings says
                table_format = TABLE_FORMATS[TRAINED_TABLE_FORMATS[module.quantization.weights]]
                stored = table_format.pack(module if table_format.name == "binary" else module.weight)
            elif embeddings in TABLE_FORMATS and name in _OPTION_TABLES:
                table_format = TABLE_FORMATS[embeddings]
                stored = table_format.pack(module.weight)
                rounded.append(name)
            else:
                if embeddings == "fp16" and name in _OPTION_TABLES:
                    rounded.append(name)
                continue
        rows, dim = module.weight.shape
        tables[name] = {"rows": rows, "dim": dim, "format": table_format.name, "bits": table_format.bits_per_weight}
        for role, array in stored.items():
            tensors[f"{name}.{role}"] = array
        sizes.add("embeddings", sum(a.nbytes for a in stored.values()), module.weight.numel() * 4)
    if rounded:
        # the rounding the training never saw: say so where the user chose it (or took the default)
        logger.warning(
            "bitmaps-export: %s trained in fp32 and stored as %s (--embeddings %s): the packed model's perplexity can "
            "differ from the source's by tenths of a percent, more with 1-bit activations (README, packed parity). "
            "Train the tables int8 (the recipes' default) for an export that computes what was trained, or export "
            "with --embeddings fp32.", " and ".join(rounded), embeddings, embeddings)
    return tables


def pack_masked_lm(
    bert, head: torch.nn.Module, fp16: bool = False, embeddings: str = DEFAULT_EMBEDDINGS
) -> "tuple[PackedModelFile, PartSizes]":
    """The encoder as `pack_bert` packs it, plus the masked-LM head (`MaskedLmHead`), whose
    decoder is tied to the word table as stored. A binarized head's dense layer (`mlm_head` in
    `binarized_components`) is a packed linear named `head.dense`."""
    packed, sizes = pack_bert(bert, fp16=fp16, embeddings=embeddings)
    if isinstance(head.dense, QuantizedLinear):
        _pack_linear(HEAD_PREFIX + "dense", head.dense, None, fp16, packed.tensors, packed.linears, sizes)
    for key, value in head.state_dict().items():
        if isinstance(head.dense, QuantizedLinear) and key.startswith("dense."):
            continue
        packed.tensors[HEAD_PREFIX + key] = _numpy(value, fp16)
        sizes.add("masked-LM head (decoder tied to embeddings)", packed.tensors[HEAD_PREFIX + key].nbytes, value.numel() * 4)
    return packed, sizes
