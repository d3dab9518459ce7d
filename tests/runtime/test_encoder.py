"""The C++ encoder of `bitmaps_runtime` against the torch modules it replaces: every packed scheme,
attention variant and table format, with padding, on every native kernel path this machine has."""
import threading

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel

from bitmaps_allennlp.modules.bert_binarization import binarize_bert_encoder
from bitmaps_allennlp.modules.binarization_spec import BinarizationSpec
from bitmaps_allennlp.modules.component_quantization import ComponentQuantization
from bitmaps_allennlp.modules.masked_lm_head import MaskedLmHead
from bitmaps_allennlp.packed.export import pack_masked_lm
from bitmaps_allennlp.packed.file_format import PackedFormatError, decode_packed_model, encode_packed_model
from bitmaps_allennlp.packed.packed_bert import build_packed_bert
from bitmaps_runtime import native
from bitmaps_runtime.encoder import PackedEncoder, runtime_problem
from tests.conftest import selected_kernel_path

pytestmark = pytest.mark.skipif(native.native_module() is None, reason="the native extension is not built")

NATIVE_PATHS = [p for p in native.available_paths() if p != "reference"]
LINEARS = ["query", "key", "value", "attention_output", "ffn_in", "ffn_out"]
VARIANTS = {
    "w1a32": dict(),
    "w1a1": dict(defaults=dict(activations="sign", center_weights=True)),
    "w1a8": dict(defaults=dict(activations="int8")),
    "w158a32": dict(defaults=dict(weights="ternary", weight_scale="per_tensor")),
    "w158a8": dict(defaults=dict(weights="ternary", weight_scale="per_tensor", activations="int8")),
    # BiT stage 2: elastic inputs, two-set into FFN out, elastic Q/K/V, two-set probabilities
    "bit_w1a1": dict(
        defaults=dict(activations="elastic", center_weights=True),
        overrides={"ffn_out": {"activations": "two_set"}},
        attention=dict(attention_activations="elastic", attention_probs="two_set"),
    ),
    # BiBERT: sign inputs, Bi-Attention over 1-bit Q/K/V
    "bibert_w1a1": dict(
        defaults=dict(activations="sign", center_weights=True),
        attention=dict(attention="bi_attention", attention_activations="sign"),
    ),
    "int8_attention": dict(defaults=dict(activations="int8"), attention=dict(attention_activations="int8", attention_probs="int8")),
    # some linears left in floating point (dense in the file), binary embedding tables
    "partial_binary_tables": dict(components=["query", "ffn_in", "word_embeddings", "position_embeddings"]),
}
FLOAT_INPUT_LINEARS = {"w1a32", "w158a32", "partial_binary_tables"}
EXACT_INPUTS = {"w1a32", "w158a32", "bibert_w1a1", "bit_w1a1", "partial_binary_tables", "w1a1"}


def _model(variant: str, hidden=48, heads=4, layers=2, vocab=300, hidden_act="gelu"):
    options = VARIANTS[variant]
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=2 * hidden + 8, max_position_embeddings=64, hidden_act=hidden_act,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    bert = BertModel(config, add_pooling_layer=False).eval()
    spec = BinarizationSpec.from_options(
        options.get("components", LINEARS),
        ComponentQuantization(**options.get("defaults", {})),
        options.get("overrides"),
        **options.get("attention", {}),
    )
    binarize_bert_encoder(bert, spec)
    head = MaskedLmHead(hidden, vocab, hidden_act, config.layer_norm_eps).eval()
    ids, mask = _inputs(vocab)
    with torch.no_grad():
        for layer in bert.encoder.layer:
            # peaked attention, as in a trained model: random weights give near-uniform weights,
            # which a two-set quantizer initialised at 2 * mean (= 2 / seq) splits at their mode,
            # where a last-bit difference flips a level
            layer.attention.self.query.weight.mul_(8)
        bert(input_ids=ids, attention_mask=mask)  # data-initialised quantizer parameters (BiT's alpha)
        for layer in bert.encoder.layer:
            probs = layer.attention.self.probs_quantizer
            if hasattr(probs, "alpha"):
                probs.alpha.fill_(0.6)  # {0, 0.6}: weights above 0.3 count
    return bert, head


def _inputs(vocab, batch=3, seq=37):
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(5, vocab, (batch, seq), generator=generator)
    mask = torch.ones(batch, seq, dtype=torch.long)
    mask[1, 20:] = 0
    mask[2, 5:] = 0
    return ids, mask


def _packed(bert, head, embeddings="fp32", fp16=False):
    packed, _ = pack_masked_lm(bert, head, fp16=fp16, embeddings=embeddings)
    return decode_packed_model(encode_packed_model(packed))


@pytest.fixture(params=NATIVE_PATHS)
def path(request):
    with selected_kernel_path(request.param):
        yield request.param


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_runtime_computes_what_the_torch_modules_compute(variant, path):
    bert, head = _model(variant)
    packed = _packed(bert, head)
    rebuilt, _ = build_packed_bert(packed)
    runtime = PackedEncoder(packed)
    ids, mask = _inputs(bert.config.vocab_size)
    real = mask.bool()
    with torch.no_grad():
        expected = rebuilt(input_ids=ids, attention_mask=mask).last_hidden_state
        expected_logits = head(expected[real], rebuilt.embeddings.word_embeddings.weight)
    got = torch.from_numpy(runtime.hidden_states(ids.numpy(), mask.numpy()))
    logits = torch.from_numpy(runtime.logits(got[real].numpy()))
    difference = (got - expected)[real].abs()
    if variant in EXACT_INPUTS:
        # real or 1-bit inputs: the same values up to float summation order
        assert difference.max() < 1e-4, difference.max()
        assert torch.allclose(logits, expected_logits, atol=1e-4, rtol=1e-4)
    else:
        # int8 inputs turn last-bit differences (torch's masked attention sums in another order)
        # into one-step flips of a few levels; they stay rare and small
        assert difference.median() < 1e-5 and difference.max() < 0.05, (difference.median(), difference.max())
        assert (logits.argmax(-1) == expected_logits.argmax(-1)).float().mean() > 0.95


@pytest.mark.parametrize("variant", ["w1a8", "w158a8", "int8_attention"])
def test_int8_schemes_are_exact_where_torch_takes_the_same_float_path(variant, path):
    # without padding torch's attention sums as the runtime does: no int8 level may differ
    bert, head = _model(variant)
    packed = _packed(bert, head)
    rebuilt, _ = build_packed_bert(packed)
    ids, _ = _inputs(bert.config.vocab_size)
    with torch.no_grad():
        expected = rebuilt(input_ids=ids).last_hidden_state
    got = torch.from_numpy(PackedEncoder(packed).hidden_states(ids.numpy()))
    assert (got - expected).abs().max() < 1e-4


def test_bi_attention_on_zero_queries_weighs_every_real_key(path):
    # a zero query row has sign bits of +1 but a zero scale: its scores are 0, so Bi-Attention
    # weighs every real key, which the runtime's integer shortcut (weight = 1[dot >= 0]) would not
    bert, head = _model("bibert_w1a1")
    with torch.no_grad():
        query = bert.encoder.layer[0].attention.self.query
        query.weight.zero_()
        query.bias.zero_()
    packed = _packed(bert, head)
    rebuilt, _ = build_packed_bert(packed)
    ids, mask = _inputs(bert.config.vocab_size)
    with torch.no_grad():
        expected = rebuilt(input_ids=ids, attention_mask=mask).last_hidden_state
    got = torch.from_numpy(PackedEncoder(packed).hidden_states(ids.numpy(), mask.numpy()))
    assert (got - expected)[mask.bool()].abs().max() < 1e-4


@pytest.mark.parametrize("embeddings,fp16", [("int8_g64", False), ("int8", False), ("int8_col", False), ("fp16", False), ("fp32", True)])
def test_table_formats_and_fp16_tensors(embeddings, fp16):
    # width 96: two int8 groups per row, the second one short
    bert, head = _model("w1a32", hidden=96)
    packed = _packed(bert, head, embeddings=embeddings, fp16=fp16)
    rebuilt, head_state = build_packed_bert(packed)
    head.load_state_dict({k: v.float() for k, v in head_state.items()})
    ids, mask = _inputs(bert.config.vocab_size)
    real = mask.bool()
    with torch.no_grad():
        expected = rebuilt(input_ids=ids, attention_mask=mask).last_hidden_state
        expected_logits = head(expected[real], rebuilt.embeddings.word_embeddings.weight)
    runtime = PackedEncoder(packed)
    got = torch.from_numpy(runtime.hidden_states(ids.numpy(), mask.numpy()))
    assert torch.allclose(got[real], expected[real], atol=1e-4, rtol=1e-4)
    assert torch.allclose(torch.from_numpy(runtime.logits(got[real].numpy())), expected_logits, atol=1e-4, rtol=1e-4)


def test_the_core_checks_column_scales_against_the_table_format():
    bert, head = _model("w1a32", hidden=96)
    packed = _packed(bert, head, embeddings="int8_col")
    runtime = PackedEncoder(packed)
    word = "embeddings.word_embeddings"
    q, step, column = (packed.tensors[f"{word}.{role}"] for role in ("q", "step", "column"))
    rows = q.shape[0]
    with pytest.raises(ValueError, match="table word needs a scale per column"):
        runtime._build("model_table", "word", 5, rows, 96, q, step)
    with pytest.raises(ValueError, match="table word needs a scale per column"):
        runtime._build("model_table", "word", 5, rows, 96, q, step, column[:-1].copy())
    with pytest.raises(ValueError, match="only format 5 \\(int8 columns\\) takes column scales"):
        runtime._build("model_table", "word", 2, rows, 96, q, step, column)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_skipping_the_padding_changes_only_the_padded_positions(variant, path):
    bert, head = _model(variant)
    runtime = PackedEncoder(_packed(bert, head))
    ids, mask = _inputs(bert.config.vocab_size)  # sequences of 37, 20 and 5 real tokens
    ids, mask = ids.numpy(), mask.numpy()
    padded = runtime.hidden_states(ids, mask)
    skipped = runtime.hidden_states(ids, mask, skip_padding=True)
    real = mask.astype(bool)
    assert (skipped[~real] == 0).all()
    difference = np.abs(skipped - padded)[real]
    if variant in EXACT_INPUTS:  # the softmax sums fewer terms: float rounding only
        assert difference.max() < 1e-4, difference.max()
    else:  # int8 inputs can turn such last bits into a rare one-step flip of a level
        assert np.median(difference) < 1e-5 and difference.max() < 0.05, (np.median(difference), difference.max())
    # a mask that is not real tokens then padding runs as given
    holed = mask.copy()
    holed[0, 3] = 0
    np.testing.assert_array_equal(runtime.hidden_states(ids, holed, skip_padding=True), runtime.hidden_states(ids, holed))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_passes_of_fewer_rows_give_the_same_bits(variant, path):
    # the batch through the layers one sequence at a time, or two and then one, as in one pass:
    # no row may depend on the rows beside it (per-row quantizer scales, per-sequence attention).
    # Linears with float inputs pick their kernel by the rows of the call (W1A32 unpacks weight
    # tiles into a GEMM at many rows), which sums in another order: float rounding only there.
    bert, head = _model(variant)
    runtime = PackedEncoder(_packed(bert, head))
    ids, mask = (t.numpy() for t in _inputs(bert.config.vocab_size))  # 3 sequences of 37
    for skip_padding in (False, True):
        whole = runtime.hidden_states(ids, mask, skip_padding=skip_padding, rows_per_pass=3 * 37)
        for rows_per_pass in (1, 60, 74):
            got = runtime.hidden_states(ids, mask, skip_padding=skip_padding, rows_per_pass=rows_per_pass)
            message = f"rows_per_pass={rows_per_pass}, skip_padding={skip_padding}"
            if variant in FLOAT_INPUT_LINEARS:
                np.testing.assert_allclose(got, whole, atol=1e-5, rtol=1e-5, err_msg=message)
            else:
                np.testing.assert_array_equal(got, whole, err_msg=message)


def test_passes_side_by_side_on_threads_give_the_same_bits():
    # 9 sequences in passes of one: on 2 threads they run side by side, each thread taking the next
    # pass (uneven lengths with the padding left out), each in a workspace of its own
    bert, head = _model("w1a8")
    runtime = PackedEncoder(_packed(bert, head))
    ids, mask = (t.numpy() for t in _inputs(bert.config.vocab_size, batch=9, seq=30))
    mask[3:, 25:] = 0
    mask[5, 4:] = 0
    for skip_padding in (False, True):
        one = runtime.hidden_states(ids, mask, threads=1, skip_padding=skip_padding)
        for rows_per_pass in (30, 60):  # 9 passes (>= 4 a thread), 5 (one thread takes 3)
            two = runtime.hidden_states(ids, mask, threads=2, skip_padding=skip_padding, rows_per_pass=rows_per_pass)
            np.testing.assert_array_equal(two, one, err_msg=f"rows_per_pass={rows_per_pass}, skip_padding={skip_padding}")


def test_rows_per_pass_must_be_a_positive_count():
    bert, head = _model("w1a1")
    runtime = PackedEncoder(_packed(bert, head))
    ids, mask = (t.numpy() for t in _inputs(bert.config.vocab_size))
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="rows_per_pass must be a positive int"):
            runtime.hidden_states(ids, mask, rows_per_pass=bad)


def test_threads_and_batch_composition_do_not_change_a_row():
    bert, head = _model("bit_w1a1", hidden=64, layers=2)
    runtime = PackedEncoder(_packed(bert, head))
    ids, mask = _inputs(bert.config.vocab_size, batch=4, seq=60)
    one = runtime.hidden_states(ids.numpy(), mask.numpy(), threads=1)
    two = runtime.hidden_states(ids.numpy(), mask.numpy(), threads=2)
    alone = runtime.hidden_states(ids[1:2, :20].numpy(), mask[1:2, :20].numpy(), threads=2)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_allclose(alone[0], one[1, :20], atol=1e-5)


@pytest.mark.timeout(120, method="thread")  # a deadlock (GIL against the model's lock) ends the run with stacks
def test_a_model_follows_the_kernel_path_it_runs_on():
    # a W1A1 model prepared on one path (the nibble layout only where read) runs on every other,
    # also while another thread keeps running it: the same integers, so the same hidden states
    bert, head = _model("w1a1")
    runtime = PackedEncoder(_packed(bert, head))
    ids, mask = _inputs(bert.config.vocab_size)
    first = {}
    for path in NATIVE_PATHS + NATIVE_PATHS[::-1]:
        with selected_kernel_path(path):
            first.setdefault(path, runtime.hidden_states(ids.numpy(), mask.numpy()))
            np.testing.assert_allclose(runtime.hidden_states(ids.numpy(), mask.numpy()), first[path], atol=1e-5)
    reference = first[NATIVE_PATHS[0]]
    for got in first.values():
        np.testing.assert_allclose(got, reference, atol=1e-5)
    results, stop = [], threading.Event()

    def keep_running():
        while not stop.is_set():
            results.append(runtime.hidden_states(ids.numpy(), mask.numpy()))

    worker = threading.Thread(target=keep_running, daemon=True)
    worker.start()
    try:
        for round_ in range(20):  # each switch to another need prepares the model again, under its lock
            with selected_kernel_path(NATIVE_PATHS[round_ % len(NATIVE_PATHS)]):
                np.testing.assert_allclose(runtime.hidden_states(ids.numpy(), mask.numpy()), reference, atol=1e-5)
    finally:
        stop.set()
        worker.join(timeout=60)
    assert not worker.is_alive() and results
    for got in results:
        np.testing.assert_allclose(got, reference, atol=1e-5)


def test_bad_inputs_are_refused_with_the_reason():
    bert, head = _model("w1a32")
    runtime = PackedEncoder(_packed(bert, head))
    with pytest.raises(ValueError, match="outside the vocabulary of 300"):
        runtime.hidden_states(np.array([[1, 300]]))
    with pytest.raises(ValueError, match="longer than max_position_embeddings 64"):
        runtime.hidden_states(np.ones((1, 65), dtype=np.int64))
    with pytest.raises(ValueError, match="mask must have the shape of token_ids"):
        runtime.hidden_states(np.ones((1, 5), dtype=np.int64), np.ones((1, 4)))


def test_a_tensor_the_encoder_does_not_use_is_refused():
    bert, head = _model("w1a32")
    packed = _packed(bert, head)
    packed.tensors["encoder.layer.0.extra"] = np.zeros(3, np.float32)
    with pytest.raises(PackedFormatError, match="does not use"):
        PackedEncoder(packed)


def test_an_activation_the_core_lacks_is_reported():
    bert, head = _model("w1a32", hidden_act="silu")
    assert "hidden_act 'silu'" in runtime_problem(_packed(bert, head))
