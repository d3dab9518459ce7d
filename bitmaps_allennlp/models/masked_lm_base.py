from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from transformers import PretrainedConfig

from allennlp.common.checks import ConfigurationError
from allennlp.data import TextFieldTensors, Vocabulary
from allennlp.models.model import Model

from bitmaps_allennlp.metrics.masked_accuracy import MaskedAccuracy
from bitmaps_allennlp.metrics.perplexity import MaskedLmPerplexity
from bitmaps_allennlp.modules.masked_lm_head import MaskedLmHead


class MaskedLmBase(Model):
    """
    What every Bitmaps masked LM shares, whatever its encoder (trainable binarized, or packed
    1-bit): BERT's MLM head applied at masked positions only, the loss, the metrics and the
    human-readable top-k output. Subclasses provide `encode` and `word_embeddings`.

    # Parameters

    vocab : `Vocabulary`
        Must hold the tokenizer's wordpieces in `target_namespace`, in the tokenizer's order.
    target_namespace : `str`, optional (default = `"tags"`)
    top_k : `int`, optional (default = `5`)
        How many candidates to return for each mask when predicting.
    """

    default_predictor = "bitmaps_masked_lm"

    def __init__(
        self, vocab: Vocabulary, target_namespace: str = "tags", top_k: int = 5, **kwargs
    ) -> None:
        super().__init__(vocab, **kwargs)
        self._target_namespace = target_namespace
        self._top_k = top_k
        self._perplexity = MaskedLmPerplexity()
        self._accuracy = MaskedAccuracy(top_k=1)
        self._accuracy_top5 = MaskedAccuracy(top_k=5)

    def _build_head(self, config: PretrainedConfig) -> None:
        """The MLM head for an encoder with this BERT config; checks the vocabulary matches."""
        namespace_size = self.vocab.get_vocab_size(self._target_namespace)
        if namespace_size != config.vocab_size:
            raise ConfigurationError(
                f"vocabulary namespace {self._target_namespace!r} has {namespace_size} entries but "
                f"the encoder has {config.vocab_size} word embeddings; configure "
                '"vocabulary": {"type": "bitmaps_wordpiece", "model_name": <tokenizer>, '
                f'"namespace": "{self._target_namespace}"}}'
            )
        self._head = MaskedLmHead(
            config.hidden_size, config.vocab_size, config.hidden_act, config.layer_norm_eps
        )

    def encode(self, tokens: TextFieldTensors) -> torch.Tensor:
        """Hidden states `(batch_size, num_wordpieces, hidden_size)`."""
        raise NotImplementedError

    @property
    def word_embeddings(self) -> torch.Tensor:
        """The `(vocab_size, hidden_size)` matrix the head's decoder is tied to."""
        raise NotImplementedError

    def masked_logits(
        self, tokens: TextFieldTensors, masked_positions: torch.BoolTensor
    ) -> torch.Tensor:
        """Logits `(num_masked, vocab_size)` at the masked positions, in row-major order."""
        hidden = self.encode(tokens)
        return self._head(hidden[masked_positions], self.word_embeddings)

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
            output["loss"] = self._masked_lm_loss(logits, target_ids[masked_positions])
        if not self.training:
            output.update(self._top_candidates(logits, masked_positions))
        return output

    def _masked_lm_loss(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        scores: Optional[Tuple[torch.Tensor, torch.LongTensor]] = None,
    ) -> torch.Tensor:
        """Mean cross-entropy over the masked positions; updates perplexity and accuracies.
        `scores`, when the caller has them from a pass of its own over the logits
        (`distillation_losses.masked_lm_scores`), are each target's NLL and the number of logits
        above it (`targets_outranked`)."""
        if scores is None:
            token_nll = F.cross_entropy(logits.float(), targets, reduction="none")
            self._accuracy(logits, targets)
            self._accuracy_top5(logits, targets)
        else:
            token_nll, outranked = scores
            self._accuracy.count_outranked(outranked)
            self._accuracy_top5.count_outranked(outranked)
        self._perplexity(token_nll.detach())
        return token_nll.mean() if targets.numel() else logits.sum() * 0.0

    def _top_candidates(
        self, logits: torch.Tensor, masked_positions: torch.BoolTensor
    ) -> Dict[str, torch.Tensor]:
        """Scatter the flat per-mask top-k back into a padded `(batch, max_masks, k)` layout so
        AllenNLP can split outputs per instance."""
        k = min(self._top_k, logits.size(-1))
        top_logits, ids = logits.topk(k, dim=-1)
        probs = (top_logits.float() - logits.float().logsumexp(-1, keepdim=True)).exp()
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
