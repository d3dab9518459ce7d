import pytest
import torch

from bitmaps_allennlp.modules import masked_lm_head
from bitmaps_allennlp.modules.masked_lm_head import DECODER_BLOCK, MaskedLmHead, decoder_blocks, tied_decoder


def _operands(rows: int, hidden: int, vocab: int):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(rows, hidden, generator=generator, requires_grad=True)
    table = (torch.randn(vocab, hidden, generator=generator) * 0.05).requires_grad_()
    bias = (torch.randn(vocab, generator=generator) * 0.1).requires_grad_()
    return x, table, bias


@pytest.mark.parametrize("vocab", [2 * DECODER_BLOCK + 5, 3 * DECODER_BLOCK - 1, DECODER_BLOCK, 11])
def test_tied_decoder_is_linear_bit_for_bit(vocab):
    # a last block a few columns wider than the others (a 5-column block of its own had summed in
    # another order), one just short of two blocks, exactly one block, and less than a block
    x, table, bias = _operands(29, 48, vocab)
    grad = torch.randn(29, vocab, generator=torch.Generator().manual_seed(1))
    expected = torch.nn.functional.linear(x, table, bias)
    expected_grads = torch.autograd.grad(expected, (x, table, bias), grad)
    got = tied_decoder(x, table, bias)
    got_grads = torch.autograd.grad(got, (x, table, bias), grad)
    assert torch.equal(got, expected)
    for name, g, e in zip(("hidden", "table", "bias"), got_grads, expected_grads):
        assert torch.equal(g, e), name


def test_tied_decoderdecoder_blocks_cover_every_column(monkeypatch):
    # a block width that does not divide the vocabulary: every column written once (the last
    # block 9 wide)
    monkeypatch.setattr(masked_lm_head, "DECODER_BLOCK", 7)
    x, table, bias = _operands(5, 8, 30)
    grad = torch.randn(5, 30, generator=torch.Generator().manual_seed(2))
    got = tied_decoder(x, table, bias)
    (table_grad,) = torch.autograd.grad(got, (table,), grad)
    torch.testing.assert_close(got, x @ table.t() + bias)
    torch.testing.assert_close(table_grad, grad.t() @ x)


def test_tied_decoder_without_grad_and_without_bias():
    x, table, bias = _operands(4, 8, 3 * DECODER_BLOCK // 2)
    with torch.inference_mode():  # the teacher's call
        assert torch.equal(tied_decoder(x, table, bias), torch.nn.functional.linear(x, table, bias))
    assert torch.equal(tied_decoder(x, table, None), torch.nn.functional.linear(x, table))


def test_head_uses_the_blocked_decoder():
    head = MaskedLmHead(16, DECODER_BLOCK + 5)
    with torch.no_grad():
        head.bias.normal_()
    hidden, table = torch.randn(6, 16), torch.randn(DECODER_BLOCK + 5, 16)
    transformed = head.layer_norm(head.activation(head.dense(hidden)))
    assert torch.equal(head(hidden, table), torch.nn.functional.linear(transformed, table, head.bias))


def testdecoder_blocks_tile_the_vocabulary():
    for vocab in (1, DECODER_BLOCK - 1, DECODER_BLOCK, 2 * DECODER_BLOCK - 1, 2 * DECODER_BLOCK, 30522):
        blocks = decoder_blocks(vocab)
        assert blocks[0][0] == 0 and blocks[-1][1] == vocab
        assert all(end == start for (_, end), (start, _) in zip(blocks, blocks[1:]))
        assert all(min(vocab, DECODER_BLOCK) <= end - start < 2 * DECODER_BLOCK for start, end in blocks)
