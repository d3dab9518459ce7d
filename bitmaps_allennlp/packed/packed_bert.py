"""Rebuild a BERT encoder and its MLM head from a packed model file."""
from typing import Dict, Tuple

import numpy as np
import torch
from transformers import BertConfig, BertModel

from bitmaps_allennlp.modules.bert_binarization import install_attention
from bitmaps_allennlp.modules.binarization_spec import BinarizationSpec
from bitmaps_allennlp.packed.file_format import PackedFormatError, PackedModelFile
from bitmaps_allennlp.packed.packed_linear import PackedLinear
from bitmaps_allennlp.packed.schemes import TABLE_FORMATS, scheme_named

HEAD_PREFIX = "head."


def _tensor(array: np.ndarray) -> torch.Tensor:
    if array.dtype == np.uint64:
        return torch.from_numpy(array.view(np.int64).copy())
    return torch.from_numpy(array.copy()).float()


def packed_linear(name: str, entry: Dict, tensors: Dict[str, torch.Tensor]) -> PackedLinear:
    """The packed layer of linear `name` (its `linears` entry), taking its tensors out of `tensors`."""
    scheme = scheme_named(entry["scheme"])
    stored = {spec.role: tensors.pop(f"{name}.{spec.role}") for spec in scheme.tensors}
    bias = tensors.pop(f"{name}.bias", None)
    return PackedLinear(
        entry["in_features"],
        entry["out_features"],
        stored["packed_weight"],
        stored["scale"],
        bias,
        scheme=scheme.name,
        input_alpha=stored.get("input_alpha"),
        input_beta=stored.get("input_beta"),
    )


def build_packed_bert(
    packed: PackedModelFile, source: str = "packed model", use_meta_device: bool = True
) -> Tuple[BertModel, Dict[str, torch.Tensor]]:
    """The encoder with `PackedLinear`s in place of its binarized linears, and the head's
    tensors (keys relative to `head.`; a packed `head.dense` is left there as its tensors). Fails,
    naming the tensors, if the file's tensors do not fit the config."""
    config = BertConfig(**packed.config)
    # On the meta device the fp32 weights of the linears being replaced are never allocated, so
    # loading a packed model does not briefly need the memory of the full-precision one.
    with torch.device("meta" if use_meta_device else "cpu"):
        bert = BertModel(config, add_pooling_layer=False)
    # the attention as trained: its quantizers (with their learned parameters, loaded below) and
    # Bi-Attention run the training module's own arithmetic
    attention = packed.attention
    install_attention(
        bert,
        BinarizationSpec.from_options(
            [], attention=attention["attention"], attention_activations=attention["activations"], attention_probs=attention["probs"]
        ),
    )
    tensors = {name: _tensor(array) for name, array in packed.tensors.items()}
    for name, entry in packed.tables.items():
        # the model computes with the fp32 table the format stands for (the tied decoder too)
        table_format = TABLE_FORMATS[entry["format"]]
        stored = {spec.role: tensors.pop(f"{name}.{spec.role}") for spec in table_format.tensors}
        tensors[f"{name}.weight"] = table_format.unpack(stored, entry["dim"])
    for name, entry in packed.linears.items():
        if name.startswith(HEAD_PREFIX):
            continue  # the head's, built by the masked LM from the head's tensors
        *parents, leaf = name.split(".")
        owner = bert
        for part in parents:
            owner = getattr(owner, part)
        setattr(owner, leaf, packed_linear(name, entry, tensors))
    head = {k[len(HEAD_PREFIX) :]: tensors.pop(k) for k in list(tensors) if k.startswith(HEAD_PREFIX)}
    expected = {
        k: v.shape
        for k, v in bert.state_dict().items()
        if not _is_packed_buffer(k, packed.linears) and not k.endswith("_quantizer.initialized")
    }
    missing, unexpected = set(expected) - set(tensors), set(tensors) - set(expected)
    if missing or unexpected:
        raise PackedFormatError(
            f"{source}: tensors do not match the BERT config "
            f"(missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]})"
        )
    for key, shape in expected.items():
        if tensors[key].shape != shape:
            raise PackedFormatError(
                f"{source}: tensor {key!r} has shape {list(tensors[key].shape)}, the config implies {list(shape)}"
            )
    bert.load_state_dict(tensors, strict=False, assign=True)
    for name, buffer in bert.named_buffers():
        if name.endswith("_quantizer.initialized"):
            buffer.fill_(True)  # learned quantizer parameters came from the file
    _materialize_position_buffers(bert, config)
    if any(t.is_meta for t in list(bert.parameters()) + list(bert.buffers())):
        # a transformers version with buffers we do not know how to rebuild: build on the CPU
        return build_packed_bert(packed, source, use_meta_device=False)
    # inference only: without gradients every packed linear can take the native kernels
    return bert.requires_grad_(False).eval(), head


def _materialize_position_buffers(bert: BertModel, config: BertConfig) -> None:
    """The embeddings' non-persistent buffers are not in any state dict; rebuild them as
    `BertEmbeddings.__init__` does."""
    embeddings = bert.embeddings
    positions = torch.arange(config.max_position_embeddings).expand((1, -1))
    if getattr(embeddings, "position_ids", None) is not None:
        embeddings.register_buffer("position_ids", positions, persistent=False)
    if getattr(embeddings, "token_type_ids", None) is not None:
        embeddings.register_buffer("token_type_ids", torch.zeros(positions.size(), dtype=torch.long), persistent=False)


def _is_packed_buffer(key: str, linears: Dict) -> bool:
    """Whether `key` is a buffer of a packed linear (or of its sub-layers, as a ternary layer's
    planes)."""
    module = key.rpartition(".")[0]
    while module:
        if module in linears:
            return True
        module = module.rpartition(".")[0]
    return False
