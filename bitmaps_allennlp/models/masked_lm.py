import logging
from typing import Any

import torch

from allennlp.common.checks import ConfigurationError
from allennlp.common.params import Params
from allennlp.data import TextFieldTensors, Vocabulary
from allennlp.models.model import Model
from allennlp.modules import TextFieldEmbedder
from allennlp.modules.text_field_embedders import BasicTextFieldEmbedder
from allennlp.nn import InitializerApplicator

from bitmaps_allennlp.models.masked_lm_base import MaskedLmBase
from bitmaps_allennlp.modules.quantized_linear import QuantizedLinear
from bitmaps_allennlp.token_embedders.binary_bert_embedder import BinaryBertEmbedder

logger = logging.getLogger(__name__)


@Model.register("bitmaps_masked_lm")
class BinaryMaskedLanguageModel(MaskedLmBase):
    """
    A (binarized) BERT encoder with BERT's masked-LM head, trained with cross-entropy on the
    masked positions only. The head comes from the checkpoint when it has one, otherwise it is
    new; its decoder is tied to the encoder's word embeddings.

    Reports `perplexity` (`bitmaps_perplexity`), `accuracy` and `accuracy_top5`
    (`bitmaps_masked_accuracy`) over masked positions.

    # Parameters

    vocab : `Vocabulary`
        Must hold the tokenizer's wordpieces in `target_namespace`, in the tokenizer's order:
        `{"type": "bitmaps_wordpiece", "model_name": ...}`.
    text_field_embedder : `TextFieldEmbedder`
        A `basic` embedder with one `bitmaps_binary_bert` token embedder.
    target_namespace : `str`, optional (default = `"tags"`)
    top_k : `int`, optional (default = `5`)
        How many candidates to return for each mask when predicting.
    initializer : `InitializerApplicator`, optional
        E.g. `pretrained` to start from another trained `bitmaps_masked_lm`'s weights file.
    """

    def __init__(
        self,
        vocab: Vocabulary,
        text_field_embedder: TextFieldEmbedder,
        target_namespace: str = "tags",
        top_k: int = 5,
        initializer: InitializerApplicator = InitializerApplicator(),
        **kwargs,
    ) -> None:
        super().__init__(vocab, target_namespace=target_namespace, top_k=top_k, **kwargs)
        self._text_field_embedder = text_field_embedder
        self._encoder = self._find_encoder(text_field_embedder)
        self._build_head(self._encoder.config)
        if self._encoder.pretrained_head_state is not None:
            self._head.load_huggingface_state(self._encoder.pretrained_head_state)
            self._encoder.pretrained_head_state = None
        if self._encoder.head_quantization is not None:
            self._head.dense = QuantizedLinear.from_linear(self._head.dense, self._encoder.head_quantization)
        initializer(self)

    @staticmethod
    def _find_encoder(text_field_embedder: TextFieldEmbedder) -> BinaryBertEmbedder:
        embedders = getattr(text_field_embedder, "_token_embedders", {})
        if not isinstance(text_field_embedder, BasicTextFieldEmbedder) or len(embedders) != 1:
            raise ConfigurationError(
                "bitmaps_masked_lm needs a `basic` text_field_embedder with exactly one token "
                "embedder of type bitmaps_binary_bert"
            )
        (encoder,) = embedders.values()
        if not isinstance(encoder, BinaryBertEmbedder):
            raise ConfigurationError(
                "bitmaps_masked_lm: the token embedder must be bitmaps_binary_bert, "
                f"got {type(encoder).__name__}"
            )
        return encoder

    def encode(self, tokens: TextFieldTensors) -> torch.Tensor:
        return self._text_field_embedder(tokens)

    def masked_logits(self, tokens: TextFieldTensors, masked_positions: torch.BoolTensor) -> torch.Tensor:
        with self._encoder.tables_quantized_once():  # the lookup and the tied decoder share them
            return super().masked_logits(tokens, masked_positions)

    @property
    def word_embeddings(self) -> torch.Tensor:
        return self._encoder.word_embeddings

    @classmethod
    def _load(cls, config: Params, serialization_dir, weights_file=None, cuda_device: int = -1):
        # The archive holds every weight: skip loading (or downloading) the original checkpoint.
        _disable_weight_loading(config.get("model"))
        return super()._load(config, serialization_dir, weights_file, cuda_device)


def _disable_weight_loading(params: Any) -> None:
    if isinstance(params, Params):
        if params.get("type") == "bitmaps_binary_bert":
            params["load_weights"] = False
        for value in params.values():
            _disable_weight_loading(value)
