"""
Knowledge-distillation losses between a student and a teacher encoder. Every function takes the
token mask `(batch, length)` so that padding never contributes, and returns a mean (over the
positions or pairs it compares), so loss weights do not depend on sequence length or depth.
"""
import functools
from typing import Any, Callable, Tuple

import torch
import torch.nn.functional as F

from bitmaps_allennlp.metrics.masked_accuracy import targets_outranked


def soft_cross_entropy(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Cross-entropy of the student's softened distribution against the teacher's (Hinton et
    al., 2015), averaged over rows, times T^2 so gradients keep their size as T changes."""
    if student_logits.numel() == 0:
        return student_logits.sum() * 0.0
    student_logits, teacher_logits = student_logits.float(), teacher_logits.float()
    if temperature != 1.0:  # x / 1 is x: skip two passes over (masks x vocabulary) and a backward one
        student_logits, teacher_logits = student_logits / temperature, teacher_logits / temperature
    teacher = F.softmax(teacher_logits, dim=-1)
    student = F.log_softmax(student_logits, dim=-1)
    return -(teacher * student).sum(-1).mean() * temperature**2


def masked_lm_scores(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.LongTensor, temperature: float = 1.0
) -> Tuple[torch.Tensor, torch.Tensor, torch.LongTensor]:
    """Everything a distillation step reads from the (masks x vocabulary) logits: the soft
    cross-entropy, the student's NLL of each target (the `mlm` term and perplexity, with its
    gradient) and `targets_outranked` (top-k accuracy). Eager, each is its own few passes over
    the logits. `compiled(masked_lm_scores)` fuses them: the student's log-softmax is computed
    once for both losses, and the reductions of all three share loops over the logits."""
    soft_ce = soft_cross_entropy(student_logits, teacher_logits, temperature)
    token_nll = F.cross_entropy(student_logits.float(), targets, reduction="none")
    return soft_ce, token_nll, targets_outranked(student_logits.detach(), targets)


@functools.lru_cache(maxsize=None)
def compiled(loss: Callable[..., Any]) -> Callable[..., Any]:
    """One of these losses under `torch.compile`, built once per function; its gradient is
    derived by autograd, as for the eager function. The number of masks changes from batch to
    batch, hence dynamic shapes. Eager, a loss is a few full passes per operation (a subtraction,
    a square, a product); compiled, one loop per reduction. `masked_lm_scores` forward and
    backward take about a third of their eager time on 2 CPU cores (docs/training-throughput.md)."""
    return torch.compile(loss, dynamic=True)


def _masked_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    weights = weights.to(values.dtype).expand_as(values)
    return (values * weights).sum() / weights.sum().clamp(min=1)


def hidden_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error of hidden states `(batch, length, hidden)` over real tokens."""
    return _masked_mean((student - teacher) ** 2, mask[:, :, None])


def _pair_mask(mask: torch.Tensor) -> torch.Tensor:
    """(batch, 1, length, length): both the query and the key position are real tokens."""
    mask = mask.float()
    return (mask[:, :, None] * mask[:, None, :])[:, None]


def attention_score_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSE of pre-softmax attention scores `(batch, heads, length, length)` (TinyBERT)."""
    return _masked_mean((student - teacher) ** 2, _pair_mask(mask))


def attention_kl(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """KL(teacher || student) of attention distributions, summed over keys, averaged over
    the real query rows (MiniLM)."""
    kl = (teacher * (teacher.clamp(min=eps).log() - student.clamp(min=eps).log())).sum(-1)
    return _masked_mean(kl, mask[:, None, :].float())


def normalized_gram(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BiBERT's direction pattern of Q, K or V `(batch, heads, length, head_size)`: the Gram
    matrix F F^T with each row L2-normalised, padding rows and columns zeroed."""
    features = features * mask[:, None, :, None].to(features.dtype)
    return F.normalize(features @ features.transpose(-1, -2), dim=-1)


def direction_matching(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BiBERT's direction-matching distillation term for one of Q, K, V: the squared L2
    distance between the student's and teacher's normalised Gram rows, averaged over the real
    rows (padding columns are zero in both)."""
    distance = ((normalized_gram(student, mask) - normalized_gram(teacher, mask)) ** 2).sum(-1)
    return _masked_mean(distance, mask[:, None, :].float())
