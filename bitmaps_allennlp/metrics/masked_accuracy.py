from typing import Optional

import torch

from allennlp.common.checks import ConfigurationError
from allennlp.nn.util import dist_reduce_sum
from allennlp.training.metrics.metric import Metric


def targets_outranked(logits: torch.Tensor, targets: torch.LongTensor) -> torch.LongTensor:
    """How many logits of each row are strictly above the target's: a target is among the top k
    (ties counted as found, as `MaskedAccuracy` counts them) exactly when fewer than k are.
    One comparison pass that an elementwise compiler fuses with the other passes over the
    logits; in eager torch, `MaskedAccuracy.__call__`'s `amax`/`topk` is quicker."""
    true_logit = logits.gather(-1, targets.unsqueeze(-1))
    return (logits > true_logit).sum(-1)


@Metric.register("bitmaps_masked_accuracy")
class MaskedAccuracy(Metric):
    """
    Top-k accuracy over masked positions: the share of positions whose true token is among the
    `top_k` highest logits. Ties at the k-th logit count as found.

    # Parameters

    top_k : `int`, optional (default = `1`)
    """

    def __init__(self, top_k: int = 1) -> None:
        if top_k < 1:
            raise ConfigurationError(f"top_k must be at least 1, got {top_k}")
        self.top_k = top_k
        self._correct = 0
        self._total = 0

    def __call__(  # type: ignore[override]
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        mask: Optional[torch.BoolTensor] = None,
    ) -> None:
        """
        # Parameters

        logits : `torch.Tensor`, shape `(..., vocab_size)`
        targets : `torch.LongTensor`, shape `(...)`
        mask : `torch.BoolTensor`, optional, shape `(...)`
        """
        logits, targets, mask = self.detach_tensors(logits, targets, mask)
        if mask is not None:
            logits, targets = logits[mask.bool()], targets[mask.bool()]
        logits = logits.reshape(-1, logits.size(-1))
        targets = targets.reshape(-1)
        if logits.numel():
            k = min(self.top_k, logits.size(-1))
            # the k-th highest logit; for k = 1 the maximum, a fifth of topk's time at 30k words
            kth_best = logits.amax(dim=-1) if k == 1 else logits.topk(k, dim=-1).values[:, -1]
            true_logit = logits.gather(1, targets.unsqueeze(1)).squeeze(1)
            correct = int((true_logit >= kth_best).sum().item())
        else:
            correct = 0
        self._correct += dist_reduce_sum(correct)
        self._total += dist_reduce_sum(targets.numel())

    def count_outranked(self, outranked: torch.LongTensor) -> None:
        """Counts positions from `targets_outranked` (computed elsewhere, for example in a fused
        pass over the logits): found when fewer than `top_k` logits are above the target's,
        which is `__call__`'s rule."""
        (outranked,) = self.detach_tensors(outranked)
        self._correct += dist_reduce_sum(int((outranked < self.top_k).sum().item()))
        self._total += dist_reduce_sum(outranked.numel())

    def get_metric(self, reset: bool = False) -> float:
        value = self._correct / self._total if self._total else 0.0
        if reset:
            self.reset()
        return value

    def reset(self) -> None:
        self._correct = 0
        self._total = 0
