import copy
import math

import pytest
import torch
from transformers import BertModel

from bitmaps_allennlp.modules.bert_binarization import install_attention
from bitmaps_allennlp.modules.counter_dropout import CounterDropout, splitmix64_high_bits
from tests.tiny_bert import tiny_bert_config

MASK64 = (1 << 64) - 1


def _splitmix64(state: int) -> int:
    # Steele, Lea and Flood (2014), as Java's SplittableRandom.mix64 computes it, on Python ints
    z = state & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _dropout(p=0.1, seed=12345):
    module = CounterDropout(p).train()
    module.seed.fill_(seed)
    return module


@pytest.mark.parametrize("seed", [0, 1, -1, 2**63 - 1, -(2**63), 0x0123456789ABCDEF])
def test_the_bits_are_splitmix64s(seed):
    module = _dropout(seed=seed)
    bits = splitmix64_high_bits(module.seed, module.gamma, torch.Size([3, 7]))
    expected = [_splitmix64(seed + i * 0x9E3779B97F4A7C15) >> 32 for i in range(21)]
    assert bits.flatten().tolist() == expected
    assert _signed(int(module.gamma)) == _signed(0x9E3779B97F4A7C15)


def test_it_drops_at_rate_p_and_scales_what_it_keeps():
    p, n = 0.1, 1 << 20
    x = torch.rand(n) + 0.5  # no zeros: a zero in the output is a dropped element
    y = _dropout(p)(x)
    dropped = y == 0
    assert abs(dropped.float().mean().item() - p) < 5 * math.sqrt(p * (1 - p) / n)
    assert torch.equal(y[~dropped], x[~dropped] * (1.0 / (1.0 - p)))
    # neighbours are independent: both dropped at rate p^2
    both = (dropped[1:] & dropped[:-1]).float().mean().item()
    assert abs(both - p * p) < 5 * math.sqrt(p * p / n)


def test_reseeding_draws_a_new_independent_mask_from_torchs_generator():
    p, n = 0.5, 1 << 16
    module = _dropout(p)
    x = torch.ones(n)
    torch.manual_seed(0)
    module.reseed()
    first = module(x) == 0
    module.reseed()
    second = module(x) == 0
    assert abs((first & second).float().mean().item() - p * p) < 5 * math.sqrt(p * p / n)
    torch.manual_seed(0)
    module.reseed()
    assert torch.equal(module(x) == 0, first)  # reproducible under torch.manual_seed


def test_evaluation_and_p_zero_are_the_identity_and_nothing_enters_the_state_dict():
    x = torch.randn(4, 5)
    assert _dropout(0.0)(x) is x
    assert _dropout(0.3).eval()(x) is x
    assert list(_dropout(0.3).state_dict()) == []
    with pytest.raises(ValueError, match="p must be in"):
        CounterDropout(1.0)


def test_compiled_masks_and_gradients_are_the_eager_ones():
    # inductor computes the int64 wrap-around, shifts and masks itself, and the backward pass
    # recomputes the mask from the seed rather than saving it: it must get the same mask
    module = _dropout(0.25, seed=-987654321)
    x = (torch.rand(3, 4, 33) + 0.5).requires_grad_()
    eager = module(x).detach()
    y = torch.compile(module)(x)
    assert torch.equal(y == 0, eager == 0)
    assert torch.allclose(y, eager, rtol=1e-6)
    y.sum().backward()
    assert torch.equal(x.grad, (eager != 0) * (1.0 / 0.75))


def test_attention_sends_its_probabilities_through_a_counter_dropout():
    # SDPA would draw its own mask: with a CounterDropout the layer takes the explicit path
    torch.manual_seed(0)
    config = tiny_bert_config(50)
    config.attention_probs_dropout_prob = 0.5
    bert = BertModel(config, add_pooling_layer=False)
    install_attention(bert)
    attention = bert.encoder.layer[0].attention.self
    attention.dropout = CounterDropout.like(attention.dropout)
    attention.train()
    attention.dropout.seed.fill_(7)
    hidden = torch.randn(2, 9, config.hidden_size)
    (context,) = attention(hidden)
    reference = copy.deepcopy(attention).eval()
    reference.record = True
    reference(hidden)
    probs = reference.last_record.probs
    value = reference.last_record.value
    expected = reference._merge(attention.dropout(probs) @ value)
    assert torch.allclose(context, expected, atol=1e-6)
    assert not torch.allclose(context, reference._merge(probs @ value), atol=1e-3)
