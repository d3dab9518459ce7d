import copy
import warnings

import pytest
import torch

from allennlp.common import Params
from allennlp.training.optimizers import Optimizer

from bitmaps_allennlp.training import TransformersAdamW


def _parameters():
    torch.manual_seed(0)
    return [(f"p{i}", torch.nn.Parameter(torch.randn(*shape))) for i, shape in enumerate([(7, 5), (5,), (300,)])]


@pytest.mark.parametrize("fused", [True, False])
def test_it_takes_transformers_adamw_steps_where_torchs_adamw_does_not(fused):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers.AdamW is deprecated
        from transformers import AdamW

        ours_params, theirs_params, plain_params = _parameters(), _parameters(), _parameters()
        ours = Optimizer.from_params(
            model_parameters=ours_params, params=Params({"type": "bitmaps_adamw", "lr": 0.05, "eps": 1e-3, "fused": fused})
        )
        theirs = AdamW([p for _, p in theirs_params], lr=0.05, eps=1e-3, weight_decay=0.0)
    plain = torch.optim.AdamW([p for _, p in plain_params], lr=0.05, eps=1e-3, weight_decay=0.0)
    assert isinstance(ours, TransformersAdamW)
    for step in range(6):
        for group in zip(ours_params, theirs_params, plain_params):
            grad = torch.randn_like(group[0][1]) * 10.0**-step  # v shrinks to eps's size
            for _, p in group:
                p.grad = grad.clone()
        for optimizer in (ours, theirs, plain):
            optimizer.step()
        for (_, a), (_, b) in zip(ours_params, theirs_params):
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-7), step
    assert not torch.allclose(plain_params[0][1], theirs_params[0][1], rtol=1e-5, atol=1e-7)


def test_a_restored_state_carries_the_step_count_on():
    first_params, second_params = _parameters(), _parameters()
    first = TransformersAdamW(first_params, lr=0.01)
    for _ in range(2):
        for _, p in first_params:
            p.grad = torch.ones_like(p)
        first.step()
    second = TransformersAdamW(second_params, lr=0.01)
    with torch.no_grad():
        for (_, a), (_, b) in zip(first_params, second_params):
            b.copy_(a)
    second.load_state_dict(copy.deepcopy(first.state_dict()))
    for (_, a), (_, b) in zip(first_params, second_params):
        a.grad, b.grad = torch.full_like(a, 0.5), torch.full_like(b, 0.5)
    first.step()
    second.step()
    assert second.param_groups[0]["eps"] == pytest.approx(1e-8 / (1 - 0.999**3) ** 0.5)
    for (_, a), (_, b) in zip(first_params, second_params):
        assert torch.equal(a, b)
