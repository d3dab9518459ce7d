"""Rebuild a BERT encoder and its MLM head from a packed model file."""
from typing import Dict, Tuple

import numpy as np
import torch
from transformers import BertConfig, BertModel

from bitmaps_allennlp.packed.file_format import PackedFormatError, PackedModelFile
from bitmaps_allennlp.packed.packed_linear import PackedBinaryLinear

HEAD_PREFIX = "head."


def _tensor(array: np.ndarray) -> torch.Tensor:
    if array.dtype == np.uint64:
        return torch.from_numpy(array.view(np.int64).copy())
    return torch.from_numpy(array.copy()).float()


def build_packed_bert(
    packed: PackedModelFile, source: str = "packed model"
) -> Tuple[BertModel, Dict[str, torch.Tensor]]:
    """The encoder with `PackedBinaryLinear`s in place of its binarized linears, and the head's
    state dict. Fails, naming the tensors, if the file's tensors do not fit the config."""
    bert = BertModel(BertConfig(**packed.config), add_pooling_layer=False)
    tensors = {name: _tensor(array) for name, array in packed.tensors.items()}
    for name, shape in packed.linears.items():
        *parents, leaf = name.split(".")
        owner = bert
        for part in parents:
            owner = getattr(owner, part)
        setattr(
            owner,
            leaf,
            PackedBinaryLinear(
                shape["in_features"],
                shape["out_features"],
                tensors.pop(f"{name}.packed_weight"),
                tensors.pop(f"{name}.scale"),
                tensors.pop(f"{name}.bias", None),
                activations=shape.get("activations", "real"),
            ),
        )
    head = {k[len(HEAD_PREFIX) :]: tensors.pop(k) for k in list(tensors) if k.startswith(HEAD_PREFIX)}
    expected = {k for k in bert.state_dict() if not _is_packed_buffer(k, packed.linears)}
    missing, unexpected = expected - set(tensors), set(tensors) - expected
    if missing or unexpected:
        raise PackedFormatError(
            f"{source}: tensors do not match the BERT config "
            f"(missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]})"
        )
    bert.load_state_dict(tensors, strict=False)
    return bert.eval(), head


def _is_packed_buffer(key: str, linears: Dict) -> bool:
    module, _, _ = key.rpartition(".")
    return module in linears
