from typing import Dict, List, Optional, Tuple

import torch
from torch import nn
from transformers.activations import ACT2FN

# Vocabulary columns per block of the decoder's product on a CPU (TiedDecoder says why)
DECODER_BLOCK = 1024


def decoder_blocks(vocab: int) -> List[Tuple[int, int]]:
    """[start, end) of each block of vocabulary columns: DECODER_BLOCK wide, the last one up to
    twice that. A narrow last block would take another MKL kernel, which sums in another order
    (a few columns came out a last bit apart)."""
    count = max(vocab // DECODER_BLOCK, 1)
    return [(i * DECODER_BLOCK, (i + 1) * DECODER_BLOCK if i + 1 < count else vocab) for i in range(count)]


def blocked_logits(hidden: torch.Tensor, table: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """`linear(hidden, table, bias)` for 2-D `hidden`, in blocks of vocabulary columns."""
    out = hidden.new_empty(hidden.size(0), table.size(0))
    for j, k in decoder_blocks(table.size(0)):
        torch.addmm(bias[j:k], hidden, table[j:k].t(), out=out[:, j:k])
    return out


class TiedDecoder(torch.autograd.Function):
    """
    `linear(hidden, table, bias)` for the (masked positions x vocabulary) logits, with the forward
    product in blocks of vocabulary columns on a CPU. In one call MKL writes the whole 307 x 30522
    output (37 MB) and ran at about half its speed on the encoder's linears; in blocks of 1024
    columns, whose outputs stay in cache, 62.6 against 80.3 ms (2 Zen 4 cores,
    `benchmarks/results/distillation_matmuls_zen4_blocked_decoder.json`; 512-2048 were about the
    same). Every logit is the same dot product over the hidden size as in one call, bit for bit
    (tests/modules/test_masked_lm_head.py, and a scratch sweep of 144 shapes up to MiniLM's). The
    gradients are `linear`'s products: the table's in blocks of rows measured no faster (0.975x),
    and the hidden states' is a sum over the vocabulary.
    """

    @staticmethod
    def forward(ctx, hidden, table, bias):  # type: ignore[override]
        ctx.save_for_backward(hidden, table)
        return blocked_logits(hidden, table, bias)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        hidden, table = ctx.saved_tensors
        grad_hidden = grad_table = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_hidden = grad @ table
        if ctx.needs_input_grad[1]:
            grad_table = grad.t() @ hidden
        if ctx.needs_input_grad[2]:
            grad_bias = grad.sum(0)
        return grad_hidden, grad_table, grad_bias


def tied_decoder(hidden: torch.Tensor, table: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """The logits `hidden @ table.T + bias`: TiedDecoder for the head's (rows, hidden) on a CPU,
    `linear` elsewhere (a GPU's one product is fast) and without a bias."""
    if bias is None or hidden.dim() != 2 or hidden.device.type != "cpu":
        return nn.functional.linear(hidden, table, bias)
    return TiedDecoder.apply(hidden, table, bias)


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
        return tied_decoder(transformed, word_embeddings, self.bias)

    def load_huggingface_state(self, state: Dict[str, torch.Tensor]) -> None:
        """Load the tensors of a `transformers` `BertLMPredictionHead` (keys relative to
        `cls.predictions.`)."""
        with torch.no_grad():
            self.dense.weight.copy_(state["transform.dense.weight"])
            self.dense.bias.copy_(state["transform.dense.bias"])
            self.layer_norm.weight.copy_(state["transform.LayerNorm.weight"])
            self.layer_norm.bias.copy_(state["transform.LayerNorm.bias"])
            self.bias.copy_(state["bias"])
