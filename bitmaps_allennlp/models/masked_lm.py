import logging
from typing import Any, Dict, List, Optional

import torch
import torch.nn.functional as F

from allennlp.common.checks import ConfigurationError
from allennlp.common.params import Params
from allennlp.data import TextFieldTensors, Vocabulary
from allennlp.models.model import Model
from allennlp.modules import TextFieldEmbedder
from allennlp.modules.text_field_embedders import BasicTextFieldEmbedder
from allennlp.nn import InitializerApplicator

from bitmaps_allennlp.metrics.masked_accuracy import MaskedAccuracy
from bitmaps_allennlp.metrics.perplexity import MaskedLmPerplexity
from bitmaps_allennlp.modules.masked_lm_head import MaskedLmHead
from bitmaps_allennlp.token_embedders.binary_bert_embedder import BinaryBertEmbedder

logger = logging.getLogger(__name__)


@Model.register("bitmaps_masked_lm")
class BinaryMaskedLanguageModel(Model):
    """
    A (binarized) BERT encoder with BERT's masked-LM head, trained with cross-entropy on the
    masked positions only. The head comes from the checkpoint when it has one, otherwise it is
    new; its decoder is tied to the encoder's word embeddings.

    Reports `perplexity` (`bitmaps_perplexity`), `accuracy` and `accuracy_top5`
    (`bitmaps_masked_accuracy`) over masked positions.

    # Parameters

    vocab : `Vocabulary`
        Must hold the tokenizer's wordpieces in `target_namespace`, in the tokenizer's order:
        `{"type": "from_pretrained_transformer", "model_name": ..., "namespace": "tags"}`.
    text_field_embedder : `TextFieldEmbedder`
        A `basic` embedder with one `bitmaps_binary_bert` token embedder.
    target_namespace : `str`, optional (default = `"tags"`)
    top_k : `int`, optional (default = `5`)
        How many candidates to return for each mask when predicting.
    initializer : `InitializerApplicator`, optional
        E.g. `pretrained` to start from another trained `bitmaps_masked_lm`'s weights file.
    """

    default_predictor = "bitmaps_masked_lm"

    def __init__(
        self,
        vocab: Vocabulary,
        text_field_embedder: TextFieldEmbedder,
        target_namespace: str = "tags",
        top_k: int = 5,
        initializer: InitializerApplicator = InitializerApplicator(),
        **kwargs,
    ) -> None:
        super().__init__(vocab, **kwargs)
        self._text_field_embedder = text_field_embedder
        self._encoder = self._find_encoder(text_field_embedder)
        config = self._encoder.config
        vocab_size = vocab.get_vocab_size(target_namespace)
        if vocab_size != config.vocab_size:
            raise ConfigurationError(
                f"vocabulary namespace {target_namespace!r} has {vocab_size} entries but the "
                f"encoder has {config.vocab_size} word embeddings; configure "
                '"vocabulary": {"type": "from_pretrained_transformer", "model_name": <tokenizer>, '
                f'"namespace": "{target_namespace}"}}'
            )
        self._target_namespace = target_namespace
        self._top_k = top_k
        self._head = MaskedLmHead(
            config.hidden_size, config.vocab_size, config.hidden_act, config.layer_norm_eps
        )
        if self._encoder.pretrained_head_state is not None:
            self._head.load_huggingface_state(self._encoder.pretrained_head_state)
            self._encoder.pretrained_head_state = None
        self._perplexity = MaskedLmPerplexity()
        self._accuracy = MaskedAccuracy(top_k=1)
        self._accuracy_top5 = MaskedAccuracy(top_k=5)
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

    def masked_logits(
        self, tokens: TextFieldTensors, masked_positions: torch.BoolTensor
    ) -> torch.Tensor:
        """Logits `(num_masked, vocab_size)` at the masked positions, in row-major order."""
        hidden = self._text_field_embedder(tokens)
        return self._head(hidden[masked_positions], self._encoder.word_embeddings)

    def forward(  # type: ignore[override]
        self,
        tokens: TextFieldTensors,
        masked_positions: torch.BoolTensor,
        target_ids: Optional[torch.LongTensor] = None,
    ) -> Dict[str, torch.Tensor]:
        """
        # Parameters

        tokens : `TextFieldTensors`
            From a `pretrained_transformer` indexer.
        masked_positions : `torch.BoolTensor`, shape `(batch_size, num_wordpieces)`
            The positions to predict.
        target_ids : `torch.LongTensor`, optional, shape `(batch_size, num_wordpieces)`
            The true wordpiece ids; when given, `loss` is returned.

        # Returns

        `top_ids` and `top_probs`, `(batch_size, max_masks, top_k)`: the best candidates at each
        batch element's masks in order, padded; `num_masks`, `(batch_size,)`; `loss` when
        `target_ids` are given.
        """
        masked_positions = masked_positions.bool()
        logits = self.masked_logits(tokens, masked_positions)
        output: Dict[str, torch.Tensor] = {}
        if target_ids is not None:
            targets = target_ids[masked_positions]
            token_nll = F.cross_entropy(logits.float(), targets, reduction="none")
            output["loss"] = token_nll.mean() if targets.numel() else logits.sum() * 0.0
            self._perplexity(token_nll)
            self._accuracy(logits, targets)
            self._accuracy_top5(logits, targets)
        if not self.training:
            output.update(self._top_candidates(logits, masked_positions))
        return output

    def _top_candidates(
        self, logits: torch.Tensor, masked_positions: torch.BoolTensor
    ) -> Dict[str, torch.Tensor]:
        """Scatter the flat per-mask top-k back into a padded `(batch, max_masks, k)` layout so
        AllenNLP can split outputs per instance."""
        k = min(self._top_k, logits.size(-1))
        probs, ids = logits.float().softmax(-1).topk(k, dim=-1)
        num_masks = masked_positions.sum(dim=1)
        batch_size, max_masks = masked_positions.size(0), int(num_masks.max().item())
        row = torch.arange(batch_size, device=logits.device).repeat_interleave(num_masks)
        slot = torch.arange(len(row), device=logits.device) - (num_masks.cumsum(0) - num_masks)[row]
        top_ids = ids.new_zeros(batch_size, max_masks, k)
        top_probs = probs.new_zeros(batch_size, max_masks, k)
        top_ids[row, slot] = ids
        top_probs[row, slot] = probs
        return {"top_ids": top_ids, "top_probs": top_probs, "num_masks": num_masks}

    def make_output_human_readable(
        self, output_dict: Dict[str, torch.Tensor]
    ) -> Dict[str, torch.Tensor]:
        """Adds `predictions`: for each batch element, one entry per mask with `tokens` and
        `probabilities`, best first."""
        predictions: List[List[Dict[str, Any]]] = []
        for ids, probs, count in zip(
            output_dict["top_ids"].tolist(),
            output_dict["top_probs"].tolist(),
            output_dict["num_masks"].tolist(),
        ):
            predictions.append(
                [
                    {
                        "tokens": [
                            self.vocab.get_token_from_index(i, self._target_namespace)
                            for i in mask_ids
                        ],
                        "probabilities": mask_probs,
                    }
                    for mask_ids, mask_probs in zip(ids[:count], probs[:count])
                ]
            )
        output_dict["predictions"] = predictions  # type: ignore[assignment]
        return output_dict

    def get_metrics(self, reset: bool = False) -> Dict[str, float]:
        return {
            "perplexity": self._perplexity.get_metric(reset),
            "accuracy": self._accuracy.get_metric(reset),
            "accuracy_top5": self._accuracy_top5.get_metric(reset),
        }

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
