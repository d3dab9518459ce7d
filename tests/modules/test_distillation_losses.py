import math

import torch

from bitmaps_allennlp.modules import distillation_losses as losses


def test_soft_cross_entropy_by_hand_with_temperature():
    student = torch.tensor([[0.0, math.log(3.0)]])  # at T = 2: softmax of [0, log 3 / 2]
    teacher = torch.tensor([[math.log(4.0), 0.0]])  # at T = 2: [2/3, 1/3]
    p_student = torch.tensor([1.0, math.sqrt(3.0)]) / (1 + math.sqrt(3.0))
    expected = -(2 / 3 * math.log(p_student[0]) + 1 / 3 * math.log(p_student[1])) * 4
    assert math.isclose(losses.soft_cross_entropy(student, teacher, temperature=2.0).item(), expected, rel_tol=1e-6)
    # at T = 1 (no division): student [1/4, 3/4], teacher [4/5, 1/5]
    at_one = -(0.8 * math.log(0.25) + 0.2 * math.log(0.75))
    assert math.isclose(losses.soft_cross_entropy(student, teacher).item(), at_one, rel_tol=1e-6)
    assert losses.soft_cross_entropy(student[:0], teacher[:0]).item() == 0.0


def test_hidden_mse_ignores_padding():
    student = torch.tensor([[[1.0, 2.0], [5.0, 5.0]]])
    teacher = torch.tensor([[[0.0, 0.0], [0.0, 0.0]]])
    mask = torch.tensor([[True, False]])
    assert losses.hidden_mse(student, teacher, mask).item() == 2.5  # (1 + 4) / 2


def test_attention_score_mse_over_real_query_key_pairs():
    student = torch.tensor([[[[1.0, 9.0], [9.0, 9.0]]]])
    teacher = torch.zeros(1, 1, 2, 2)
    mask = torch.tensor([[True, False]])
    assert losses.attention_score_mse(student, teacher, mask).item() == 1.0


def test_attention_kl_by_hand():
    teacher = torch.tensor([[[[0.5, 0.5], [1.0, 0.0]]]])
    student = torch.tensor([[[[0.25, 0.75], [0.3, 0.7]]]])
    mask = torch.tensor([[True, False]])  # the second query row is padding
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert math.isclose(losses.attention_kl(student, teacher, mask).item(), expected, rel_tol=1e-6)


def test_direction_matching_by_hand():
    # one head, two tokens, head size 2
    student = torch.tensor([[[[1.0, 0.0], [0.0, 2.0]]]])  # Gram [[1, 0], [0, 4]] -> rows [1, 0], [0, 1]
    teacher = torch.tensor([[[[1.0, 1.0], [1.0, 1.0]]]])  # Gram all 2 -> rows [s, s], s = 1/sqrt 2
    mask = torch.tensor([[True, True]])
    s = 1 / math.sqrt(2)
    row = (1 - s) ** 2 + s**2  # squared distance of each row
    assert math.isclose(losses.direction_matching(student, teacher, mask).item(), row, rel_tol=1e-6)
    # scaling Q does not change its direction pattern
    assert losses.direction_matching(3 * teacher, teacher, mask).item() < 1e-12


def _logits_and_targets(rows: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    student = torch.randn(rows, 50, generator=generator) * 3
    student[:, :10] = student[:, :10].round()  # ties at the targets' logits
    teacher = torch.randn(rows, 50, generator=generator) * 3
    targets = torch.randint(0, 10, (rows,), generator=generator)
    return student, teacher, targets


def test_masked_lm_scores_are_the_separate_computations():
    student, teacher, targets = _logits_and_targets(40, 0)
    soft_ce, token_nll, outranked = losses.masked_lm_scores(student, teacher, targets, 2.0)
    assert torch.equal(soft_ce, losses.soft_cross_entropy(student, teacher, 2.0))
    assert torch.allclose(token_nll, -torch.log_softmax(student, -1)[torch.arange(40), targets])
    true_logit = student[torch.arange(40), targets]
    assert outranked.tolist() == [int((row > t).sum()) for row, t in zip(student, true_logit)]


def test_compiled_masked_lm_scores_equal_eager_with_gradients():
    scores = losses.compiled(losses.masked_lm_scores)
    assert losses.compiled(losses.masked_lm_scores) is scores  # compiled once
    for rows, seed, temperature in ((37, 1, 1.0), (52, 2, 1.0), (29, 3, 2.0)):  # masks per batch vary
        student, teacher, targets = _logits_and_targets(rows, seed)
        results = []
        for function in (losses.masked_lm_scores, scores):
            logits = student.clone().requires_grad_()
            soft_ce, token_nll, outranked = function(logits, teacher, targets, temperature)
            (soft_ce + 0.5 * token_nll.mean()).backward()  # the mlm term's gradient flows too
            results.append((soft_ce.detach(), token_nll.detach(), outranked, logits.grad))
        (eager_ce, eager_nll, eager_ranks, eager_grad), (ce, nll, ranks, grad) = results
        assert torch.allclose(ce, eager_ce, rtol=1e-5)
        assert torch.allclose(nll, eager_nll, rtol=1e-5, atol=1e-6)
        assert torch.equal(ranks, eager_ranks)
        assert torch.allclose(grad, eager_grad, rtol=1e-4, atol=1e-7)


def test_compiled_hidden_mse_equals_eager_with_gradients():
    generator = torch.Generator().manual_seed(4)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 4:] = False
    teacher = torch.randn(3, 7, 16, generator=generator)
    results = []
    for function in (losses.hidden_mse, losses.compiled(losses.hidden_mse)):
        student = torch.randn(3, 7, 16, generator=torch.Generator().manual_seed(5)).requires_grad_()
        loss = function(student, teacher, mask)
        loss.backward()
        results.append((loss.detach(), student.grad))
    (eager, eager_grad), (compiled, compiled_grad) = results
    assert torch.allclose(compiled, eager, rtol=1e-6) and torch.allclose(compiled_grad, eager_grad, rtol=1e-5, atol=1e-8)
    assert compiled_grad[1, 4:].abs().max() == 0  # padding
