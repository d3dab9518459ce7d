import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import nn

from allennlp.common.checks import ConfigurationError

from bitmaps_allennlp.modules.activation_quantizer import SignActivation, build_activation_quantizer
from bitmaps_allennlp.modules.sign_ste import sign_ste


@dataclass
class AttentionRecord:
    """What one layer's attention computed, for distillation losses. Shapes
    `(batch, heads, length, head_size)` for Q/K/V (the projections, before any matmul input
    quantizer: the real-valued directions BiBERT's direction matching compares), and
    `(batch, heads, length, length)` for the scores (scaled, before the padding mask) and the
    attention weights."""

    query: torch.Tensor
    key: torch.Tensor
    value: torch.Tensor
    scores: torch.Tensor
    probs: torch.Tensor


class QuantizedSelfAttention(nn.Module):
    """
    BERT self-attention (a drop-in for `transformers`' `BertSelfAttention`, with the same
    `query`/`key`/`value` submodules and so the same state-dict keys) whose two matmuls can be
    quantized:

    - `attention_activations` quantizes Q and K before the score matmul and V before the
      context matmul (1-bit for BiBERT/BiT W1A1, where every matmul is binary).
    - `attention = "bi_attention"` replaces softmax by BiBERT's Bi-Attention,
      weights = 1[score >= 0] (padding excluded), whose gradient is the sign's straight-through
      estimator halved; otherwise `attention_probs` quantizes the softmax output (BiT's two-set).

    With every knob at full precision it computes exactly what BERT computes (through PyTorch's
    fused scaled-dot-product attention when nothing has to be recorded). When `record` is set,
    each forward pass stores an `AttentionRecord` in `last_record`.
    """

    def __init__(
        self,
        original: nn.Module,
        attention: str = "softmax",
        attention_activations: str = "real",
        attention_probs: str = "real",
        estimator: str = "clipped",
    ) -> None:
        super().__init__()
        position_embedding_type = getattr(original, "position_embedding_type", "absolute")
        if position_embedding_type != "absolute" or getattr(original, "is_decoder", False):
            raise ConfigurationError(
                "bitmaps_binary_bert supports encoders with absolute position embeddings only, "
                f"got position_embedding_type={position_embedding_type!r}"
            )
        self.num_attention_heads = original.num_attention_heads
        self.attention_head_size = original.attention_head_size
        self.query, self.key, self.value = original.query, original.key, original.value
        self.dropout = original.dropout
        self.attention = attention
        self.attention_activations = attention_activations
        self.attention_probs = attention_probs
        self.estimator = estimator
        self.query_quantizer = build_activation_quantizer(attention_activations, estimator)
        self.key_quantizer = build_activation_quantizer(attention_activations, estimator)
        self.value_quantizer = build_activation_quantizer(attention_activations, estimator)
        self.probs_quantizer = build_activation_quantizer(attention_probs, estimator)
        self.full_precision = attention == "softmax" and attention_activations == "real" and attention_probs == "real"
        self.record = False
        self.last_record: Optional[AttentionRecord] = None
        self.train(original.training)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_attention_heads, self.attention_head_size).transpose(1, 2)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        head_mask: Optional[torch.Tensor] = None,
        encoder_hidden_states: Optional[torch.Tensor] = None,
        encoder_attention_mask: Optional[torch.Tensor] = None,
        past_key_value=None,
        output_attentions: bool = False,
    ) -> Tuple[torch.Tensor, ...]:
        if encoder_hidden_states is not None or past_key_value is not None or head_mask is not None:
            raise ConfigurationError("bitmaps_binary_bert is an encoder: no cross-attention, cache or head mask")
        real_query = self._heads(self.query(hidden_states))
        real_key = self._heads(self.key(hidden_states))
        real_value = self._heads(self.value(hidden_states))
        query, key, value = self.query_quantizer(real_query), self.key_quantizer(real_key), self.value_quantizer(real_value)
        dropout_p = self.dropout.p if self.training else 0.0
        # SDPA draws its own dropout mask: only where the layer's dropout is torch's (a
        # CounterDropout, installed by `compile_layers`, must see the probabilities)
        sdpa_dropout = dropout_p == 0.0 or type(self.dropout) is nn.Dropout
        if self.full_precision and not self.record and not output_attentions and sdpa_dropout:
            # additive float masks (eager or sdpa layout) broadcast the same way here
            context = nn.functional.scaled_dot_product_attention(
                query, key, value, attn_mask=attention_mask, dropout_p=dropout_p
            )
            return (self._merge(context),)
        scores = self._scores(real_query, real_key, query, key)
        masked_scores = scores if attention_mask is None else scores + attention_mask
        if self.attention == "bi_attention":
            keep = torch.ones_like(scores) if attention_mask is None else (attention_mask >= 0).to(scores.dtype)
            probs = (sign_ste(masked_scores, self.estimator) + 1) / 2 * keep
        else:
            probs = self.probs_quantizer(nn.functional.softmax(masked_scores, dim=-1))
        if self.record:
            self.last_record = AttentionRecord(real_query, real_key, real_value, scores, probs)
        context = self._merge(self.dropout(probs) @ value)
        return (context, probs) if output_attentions else (context,)

    def _scores(self, real_query, real_key, query, key) -> torch.Tensor:
        if isinstance(self.query_quantizer, SignActivation) and isinstance(self.key_quantizer, SignActivation):
            # 1-bit Q and K: the integer dot products of the signs, exact in float, times the
            # scales. Summing +-(beta_q beta_k) terms directly rounds, so a zero dot product can come
            # out as +-1 ulp, and Bi-Attention's 1[score >= 0] would then depend on float order:
            # the packed model (other kernels, same module) could not reproduce it.
            signs_q, scale_q = self.query_quantizer.parts(real_query)
            signs_k, scale_k = self.key_quantizer.parts(real_key)
            dots = signs_q @ signs_k.transpose(-1, -2)
            return dots * (scale_q * scale_k.transpose(-1, -2)) / math.sqrt(self.attention_head_size)
        return query @ key.transpose(-1, -2) / math.sqrt(self.attention_head_size)

    def _merge(self, context: torch.Tensor) -> torch.Tensor:
        batch, _, length, _ = context.shape
        return context.transpose(1, 2).reshape(batch, length, self.num_attention_heads * self.attention_head_size)
