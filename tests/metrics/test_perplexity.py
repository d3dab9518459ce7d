import math

import torch

from allennlp.common.testing import run_distributed_test

from bitmaps_allennlp.metrics.perplexity import MaskedLmPerplexity


def test_token_weighted_over_batches():
    metric = MaskedLmPerplexity()
    metric(torch.tensor([1.0, 2.0, 3.0]))
    metric(torch.tensor([[4.0, 100.0]]), mask=torch.tensor([[True, False]]))
    # mean NLL over the 4 unmasked tokens = 2.5 (not the mean of batch means 2.0 and 4.0)
    assert math.isclose(metric.get_metric(), math.exp(2.5))
    assert math.isclose(metric.get_metric(reset=True), math.exp(2.5))
    assert math.isnan(metric.get_metric())


def test_matches_cross_entropy():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    targets = torch.tensor([0, 2])
    nll = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    metric = MaskedLmPerplexity()
    metric(nll)
    by_hand = [-math.log(math.e**2 / (math.e**2 + 2)), -math.log(1 / (math.e + 2))]
    assert math.isclose(metric.get_metric(), math.exp(sum(by_hand) / 2), rel_tol=1e-6)


def _distributed_check(global_rank, world_size, gpu_id, nll, expected):
    metric = MaskedLmPerplexity()
    metric(nll[global_rank])
    assert math.isclose(metric.get_metric(), expected, rel_tol=1e-9)


def test_distributed_equals_single_process():
    # rank 0 has 1 token, rank 1 has 3: the token-weighted mean is 2.5, not (1 + 3) / 2
    nll = [torch.tensor([1.0]), torch.tensor([3.0, 3.0, 3.0])]
    expected = math.exp((1 + 9) / 4)
    run_distributed_test([-1, -1], _distributed_check, nll, expected)
