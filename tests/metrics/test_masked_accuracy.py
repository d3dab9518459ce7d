import pytest
import torch

from allennlp.common.checks import ConfigurationError

from bitmaps_allennlp.metrics.masked_accuracy import MaskedAccuracy


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
