import pytest
import torch

from allennlp.common.checks import ConfigurationError

from bitmaps_allennlp.metrics.masked_accuracy import MaskedAccuracy, targets_outranked


def test_top1_and_top2_by_hand():
    logits = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    targets = torch.tensor([1, 1, 0])
    top1, top2 = MaskedAccuracy(1), MaskedAccuracy(2)
    top1(logits, targets)
    top2(logits, targets)
    assert top1.get_metric() == pytest.approx(1 / 3)
    assert top2.get_metric() == pytest.approx(2 / 3)


def test_mask_and_reset():
    logits = torch.tensor([[[0.9, 0.1], [0.9, 0.1]]])
    targets = torch.tensor([[0, 1]])
    metric = MaskedAccuracy(1)
    metric(logits, targets, mask=torch.tensor([[True, False]]))
    assert metric.get_metric(reset=True) == 1.0
    assert metric.get_metric() == 0.0


def test_bad_top_k():
    with pytest.raises(ConfigurationError, match="top_k"):
        MaskedAccuracy(0)


@pytest.mark.parametrize("k", [1, 3])
def test_ties_at_the_kth_logit_count_as_found(k):
    logits = torch.tensor([[0.5, 0.5, 0.5, 0.5, 0.1]])
    for target in range(5):
        metric = MaskedAccuracy(k)
        metric(logits, torch.tensor([target]))
        assert metric.get_metric() == (1.0 if target < 4 else 0.0)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_counting_outranking_logits_is_the_same_rule(k):
    # ties everywhere (logits on a coarse grid), so the k-th logit is often tied with the target
    generator = torch.Generator().manual_seed(0)
    logits = torch.randint(0, 4, (200, 7), generator=generator).float()
    targets = torch.randint(0, 7, (200,), generator=generator)
    by_logits, by_counts = MaskedAccuracy(k), MaskedAccuracy(k)
    by_logits(logits, targets)
    by_counts.count_outranked(targets_outranked(logits, targets))
    assert by_counts._total == 200
    assert by_counts._correct == by_logits._correct
    assert 0 < by_counts._correct < 200


def test_targets_outranked_by_hand():
    logits = torch.tensor([[0.5, 0.9, 0.5, 0.1], [0.3, 0.2, 0.1, 0.0]])
    assert targets_outranked(logits, torch.tensor([0, 3])).tolist() == [1, 3]
