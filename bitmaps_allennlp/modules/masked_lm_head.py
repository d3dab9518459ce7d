from typing import Dict

import torch
from torch import nn
from transformers.activations import ACT2FN


class MaskedLmHead(nn.Module):
    """
    BERT's masked-LM head: dense -> activation -> LayerNorm -> decoder tied to the word
    embeddings (passed in at call time, so the tie survives any re-wrapping of the encoder) plus a
    per-token bias. Called only on the hidden states of masked positions: full-vocabulary logits
    at every position would cost as much as the encoder itself.

    # Parameters

    hidden_size : `int`
    vocab_size : `int`
    hidden_act : `str`, optional (default = `"gelu"`)
        Any name in `transformers.activations.ACT2FN`, as in a BERT config.
    layer_norm_eps : `float`, optional (default = `1e-12`)
    """

    def __init__(
        self,
        hidden_size: int,
        vocab_size: int,
        hidden_act: str = "gelu",
        layer_norm_eps: float = 1e-12,
    ) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.activation = ACT2FN[hidden_act]
        self.layer_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, hidden_states: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        transformed = self.layer_norm(self.activation(self.dense(hidden_states)))
        return nn.functional.linear(transformed, word_embeddings, self.bias)

    def load_huggingface_state(self, state: Dict[str, torch.Tensor]) -> None:
        """Load the tensors of a `transformers` `BertLMPredictionHead` (keys relative to
        `cls.predictions.`)."""
        with torch.no_grad():
            self.dense.weight.copy_(state["transform.dense.weight"])
            self.dense.bias.copy_(state["transform.dense.bias"])
            self.layer_norm.weight.copy_(state["transform.LayerNorm.weight"])
            self.layer_norm.bias.copy_(state["transform.LayerNorm.bias"])
            self.bias.copy_(state["bias"])
