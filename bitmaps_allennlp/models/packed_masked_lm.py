import logging
import os
from typing import Optional

import torch
from allennlp.common.checks import ConfigurationError
from bitmaps_runtime.encoder import PackedEncoder, runtime_problem

from allennlp.common.params import Params
from allennlp.data import TextFieldTensors, Vocabulary
from allennlp.models.model import Model

from bitmaps_allennlp.models.masked_lm_base import MaskedLmBase
from bitmaps_allennlp.packed.file_format import PackedFormatError, read_packed_model
from bitmaps_allennlp.packed.packed_bert import HEAD_PREFIX, build_packed_bert, packed_linear

logger = logging.getLogger(__name__)
ENGINES = ("auto", "runtime", "torch")


@Model.register("bitmaps_packed_masked_lm")
class PackedMaskedLanguageModel(MaskedLmBase):
    """
    A masked LM that runs on a packed 1-bit model file written by `allennlp bitmaps-export`:
    binarized linears as sign bits plus per-channel scales, everything else as exported. Same
    inputs, outputs, metrics and predictor as `bitmaps_masked_lm`; inference only.

    Its archive holds the packed file instead of a pickled `weights.th`: weights are read with
    safetensors and checked (magic, version, checksum, shapes) before use.

    # Parameters

    vocab : `Vocabulary`
    packed_file : `str`
        The packed model file; relative paths are resolved against the archive's folder.
    target_namespace : `str`, optional (default = `"tags"`)
    top_k : `int`, optional (default = `5`)
    engine : `str`, optional (default = `"auto"`)
        What runs the forward pass: `runtime`, the C++ encoder of `bitmaps_runtime` (the same core
        `bitmaps-predict` runs without torch); `torch`, the torch modules on the packed kernels
        (the reference the runtime is tested against, which also runs on a GPU); `auto`, the
        runtime when its native extension is built, else torch.
    """

    def __init__(
        self,
        vocab: Vocabulary,
        packed_file: str,
        target_namespace: str = "tags",
        top_k: int = 5,
        engine: str = "auto",
        **kwargs,
    ) -> None:
        super().__init__(vocab, target_namespace=target_namespace, top_k=top_k, **kwargs)
        if engine not in ENGINES:
            raise ConfigurationError(f"model.engine must be one of {list(ENGINES)}, got {engine!r}")
        packed = read_packed_model(packed_file)
        self._bert, head_state = build_packed_bert(packed, source=packed_file)
        self._build_head(self._bert.config)
        dense = packed.linears.get(HEAD_PREFIX + "dense")
        if dense is not None:
            # a binarized head: its transform is a packed linear too
            self._head.dense = packed_linear("dense", dense, head_state)
        expected = {k: v.shape for k, v in self._head.state_dict().items() if not (dense and k.startswith("dense."))}
        found = {k: v.shape for k, v in head_state.items()}
        if found != expected:
            raise PackedFormatError(
                f"{packed_file}: the masked-LM head's tensors {_shapes(found)} do not fit the "
                f"config, which implies {_shapes(expected)} (under {HEAD_PREFIX!r})"
            )
        self._head.load_state_dict({k: v.float() for k, v in head_state.items()}, strict=dense is None)
        self.eval()
        self._runtime: Optional[PackedEncoder] = None
        problem = runtime_problem(packed) if engine != "torch" else None
        if engine == "runtime" and problem is not None:
            raise ConfigurationError(f"model.engine 'runtime' cannot run {packed_file}: {problem}")
        if engine != "torch" and problem is None:
            self._runtime = PackedEncoder(packed, source=packed_file)
        elif engine == "auto":
            logger.info("packed model runs on the torch modules: %s", problem)

    @property
    def engine(self) -> str:
        """`runtime` or `torch`: what runs the forward pass."""
        return "torch" if self._runtime is None else "runtime"

    def _runs_on_runtime(self, tensor: torch.Tensor) -> bool:
        return self._runtime is not None and tensor.device.type == "cpu"

    def masked_logits(self, tokens: TextFieldTensors, masked_positions: torch.BoolTensor) -> torch.Tensor:
        if not self._runs_on_runtime(masked_positions):
            return super().masked_logits(tokens, masked_positions)
        # only real tokens are masked, so the padded positions need not be computed at all
        rows = self.encode(tokens, skip_padding=True)[masked_positions]
        return torch.from_numpy(self._runtime.logits(rows.numpy(), threads=torch.get_num_threads()))

    def encode(self, tokens: TextFieldTensors, skip_padding: bool = False) -> torch.Tensor:
        """
        The last hidden states. `skip_padding`: on the runtime, the padded positions are left out
        of the encoder and come back 0 (`PackedEncoder.hidden_states`); the torch modules compute
        them either way.
        """
        inputs = tokens["tokens"]
        if self._runs_on_runtime(inputs["token_ids"]):
            type_ids = inputs.get("type_ids")
            hidden = self._runtime.hidden_states(
                inputs["token_ids"].numpy(),
                inputs["mask"].numpy(),
                None if type_ids is None else type_ids.numpy(),
                threads=torch.get_num_threads(),
                skip_padding=skip_padding,
            )
            return torch.from_numpy(hidden)
        return self._bert(
            input_ids=inputs["token_ids"],
            attention_mask=inputs["mask"],
            token_type_ids=inputs.get("type_ids"),
        ).last_hidden_state

    @property
    def word_embeddings(self) -> torch.Tensor:
        return self._bert.embeddings.word_embeddings.weight

    @classmethod
    def _load(cls, config: Params, serialization_dir, weights_file=None, cuda_device: int = -1):
        # Everything comes from the packed file inside the archive; there is no weights.th to
        # unpickle. The vocabulary is read the way Model._load reads it.
        vocab_params = config.get("vocabulary", Params({}))
        vocab_choice = vocab_params.pop_choice("type", Vocabulary.list_available(), True)
        vocab_class, _ = Vocabulary.resolve_class_name(vocab_choice)
        vocab = vocab_class.from_files(
            os.path.join(serialization_dir, "vocabulary"),
            vocab_params.get("padding_token"),
            vocab_params.get("oov_token"),
        )
        model_params = config.get("model")
        model_params["packed_file"] = _inside_archive(model_params["packed_file"], serialization_dir)
        model = Model.from_params(vocab=vocab, params=model_params, serialization_dir=serialization_dir)
        return model.cuda(cuda_device) if cuda_device >= 0 else model


def _shapes(shapes) -> str:
    return ", ".join(f"{k} {list(v)}" for k, v in sorted(shapes.items())) or "none"


def _inside_archive(packed_file: str, serialization_dir: str) -> str:
    """An archive's model reads its packed file from inside the archive only: a config naming an
    absolute path or one that climbs out would make loading a downloaded archive read (and, in
    error messages, describe) an arbitrary file of the user's."""
    folder = os.path.realpath(serialization_dir)
    path = os.path.realpath(os.path.join(folder, packed_file))
    if os.path.isabs(packed_file) or os.path.commonpath([folder, path]) != folder:
        raise PackedFormatError(
            f"model.packed_file = {packed_file!r} in the archive's config is not a file inside the archive"
        )
    return path
