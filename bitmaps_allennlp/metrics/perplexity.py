import math
from typing import Optional

import torch

from allennlp.nn.util import dist_reduce_sum
from allennlp.training.metrics.metric import Metric


@Metric.register("bitmaps_perplexity")
class MaskedLmPerplexity(Metric):
    """
    Masked-LM perplexity: exp of the mean negative log-likelihood (natural log) of the true
    wordpiece over every masked position seen, each position weighted equally (token-weighted,
    not an average of per-batch perplexities). Sums are reduced across workers, so the value is
    the same under distributed training as on one process.

    This is not a causal-LM perplexity nor Salazar et al.'s pseudo-perplexity (which masks every
    token once): only the ~15% positions chosen by the reader's masking are scored, each seeing
    the other masks in its context.
    """

    def __init__(self) -> None:
        self._nll_sum = 0.0
        self._count = 0

    def __call__(  # type: ignore[override]
        self, token_nll: torch.Tensor, mask: Optional[torch.BoolTensor] = None
    ) -> None:
        """
        # Parameters

        token_nll : `torch.Tensor`
            Negative log-likelihoods of the true tokens, any shape.
        mask : `torch.BoolTensor`, optional
            Same shape as `token_nll`; `False` entries are ignored.
        """
        token_nll, mask = self.detach_tensors(token_nll, mask)
        if mask is not None:
            token_nll = token_nll[mask.bool()]
        self._nll_sum += dist_reduce_sum(token_nll.double().sum().item())
        self._count += dist_reduce_sum(token_nll.numel())

    def get_metric(self, reset: bool = False) -> float:
        value = math.exp(self._nll_sum / self._count) if self._count else float("nan")
        if reset:
            self.reset()
        return value

    def reset(self) -> None:
        self._nll_sum = 0.0
        self._count = 0
