import pytest
import torch
from transformers import BertForMaskedLM, BertModel

from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.modules.token_embedders import TokenEmbedder

from bitmaps_allennlp.modules.counter_dropout import CounterDropout
from bitmaps_allennlp.modules.quantized_embedding import QuantizedEmbedding
from bitmaps_allennlp.modules.quantized_linear import QuantizedLinear
from tests.tiny_bert import TINY_BERT_CONFIG

LINEAR_COMPONENTS = ("query", "key", "value", "attention_output", "ffn_in", "ffn_out")
TABLES = ("word_embeddings", "position_embeddings")


def _inputs():
    torch.manual_seed(0)
    token_ids = torch.randint(5, 100, (2, 9))
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 6:] = False
    return token_ids, mask


def test_full_precision_equals_the_huggingface_encoder(tiny_bert_dir):
    embedder = TokenEmbedder.from_params(
        Params({"type": "bitmaps_binary_bert", "model_name": str(tiny_bert_dir), "binarize": False})
    ).eval()
    reference = BertModel.from_pretrained(str(tiny_bert_dir), add_pooling_layer=False).eval()
    token_ids, mask = _inputs()
    expected = reference(input_ids=token_ids, attention_mask=mask).last_hidden_state
    assert torch.allclose(embedder(token_ids, mask), expected, atol=1e-6)
    assert embedder.get_output_dim() == TINY_BERT_CONFIG["hidden_size"]
    assert embedder.pretrained_head_state is None


def test_binarized_encoder_equals_hand_binarized_weights(tiny_bert_dir):
    embedder = TokenEmbedder.from_params(
        Params({"type": "bitmaps_binary_bert", "model_name": str(tiny_bert_dir)})
    ).eval()
    assert sum(isinstance(m, QuantizedLinear) for m in embedder.modules()) == 12
    reference = BertModel.from_pretrained(str(tiny_bert_dir), add_pooling_layer=False).eval()
    with torch.no_grad():
        for name, module in reference.named_modules():
            if isinstance(module, torch.nn.Linear) and ".layer." in f".{name}":
                w = module.weight
                module.weight.copy_(w.abs().mean(1, keepdim=True) * torch.where(w >= 0, 1.0, -1.0))
    token_ids, mask = _inputs()
    expected = reference(input_ids=token_ids, attention_mask=mask).last_hidden_state
    assert torch.allclose(embedder(token_ids, mask), expected, atol=1e-5)


def test_random_init_from_bert_config_and_frozen_eval_mode():
    embedder = TokenEmbedder.from_params(
        Params(
            {
                "type": "bitmaps_binary_bert",
                "bert_config": dict(TINY_BERT_CONFIG, vocab_size=120, hidden_dropout_prob=0.5),
                "binarized_components": ["query", "key"],
                "train_parameters": False,
                "eval_mode": True,
            }
        )
    )
    embedder.train()
    assert not embedder.bert.training
    assert not any(p.requires_grad for p in embedder.parameters())
    assert sum(isinstance(m, QuantizedLinear) for m in embedder.modules()) == 4
    token_ids, mask = _inputs()
    assert torch.equal(embedder(token_ids, mask), embedder(token_ids, mask))


def test_checkpoint_mlm_head_is_kept(tiny_bert_with_head_dir):
    embedder = TokenEmbedder.from_params(
        Params({"type": "bitmaps_binary_bert", "model_name": str(tiny_bert_with_head_dir)})
    )
    reference = BertForMaskedLM.from_pretrained(str(tiny_bert_with_head_dir))
    state = embedder.pretrained_head_state
    assert torch.equal(state["transform.dense.weight"], reference.cls.predictions.transform.dense.weight)


def test_bad_configurations_are_named(tiny_bert_dir):
    with pytest.raises(ConfigurationError, match="exactly one of `model_name`"):
        TokenEmbedder.from_params(Params({"type": "bitmaps_binary_bert"}))
    with pytest.raises(ConfigurationError, match="binarized_components.*'mlp'"):
        TokenEmbedder.from_params(
            Params({"type": "bitmaps_binary_bert", "model_name": str(tiny_bert_dir), "binarized_components": ["mlp"]})
        )


@pytest.mark.parametrize(
    "knobs",
    [
        # BiT stage 2's activations: elastic inputs and Q/K/V, two-set probabilities
        {"activations": "elastic", "attention_activations": "elastic", "attention_probs": "two_set"},
        # BiBERT: sign activations and Bi-Attention; BitNet b1.58: ternary weights, int8 inputs
        pytest.param(
            {"activations": "sign", "attention": "bi_attention", "attention_activations": "sign"}, marks=pytest.mark.slow
        ),
        pytest.param({"weights": "ternary", "activations": "int8"}, marks=pytest.mark.slow),
    ],
)
def test_compiled_layers_train_like_eager_ones(knobs):
    # about a minute per case on 2 cores, nearly all of it compilation
    def build(compile_layers):
        torch.manual_seed(0)
        return TokenEmbedder.from_params(
            Params(
                {
                    "type": "bitmaps_binary_bert",
                    "bert_config": dict(TINY_BERT_CONFIG, vocab_size=120),
                    "compile_layers": compile_layers,
                    **knobs,
                }
            )
        ).train()

    eager, compiled = build(False), build(True)
    assert list(compiled.state_dict()) == list(eager.state_dict())
    token_ids, mask = _inputs()
    results = []
    for embedder in (eager, compiled):
        internals = embedder.encode_with_internals(token_ids, mask, record_attention=True)
        loss = sum(h.square().mean() for h in internals.hidden_states)
        loss = loss + sum(r.query.square().mean() for r in internals.attention)
        loss.backward()
        grads = {n: p.grad for n, p in embedder.named_parameters() if p.grad is not None}
        results.append((loss.detach(), grads, len(internals.attention)))
    (loss_e, grads_e, records_e), (loss_c, grads_c, records_c) = results
    assert records_c == records_e == TINY_BERT_CONFIG["num_hidden_layers"]
    assert torch.allclose(loss_c, loss_e, rtol=1e-5)
    assert grads_c.keys() == grads_e.keys()
    # float rounding differs between generated and eager code: compare against the largest
    # gradient, since most of a random tiny W1A1 net's gradients are near zero
    largest = max(g.abs().max() for g in grads_e.values())
    for name in grads_e:
        assert torch.allclose(grads_c[name], grads_e[name], rtol=1e-3, atol=1e-4 * largest), name
    # evaluation runs the same layers eagerly: nothing more is compiled
    compiled.eval(), eager.eval()
    frames = dict(torch._dynamo.utils.counters["frames"])
    assert torch.allclose(compiled(token_ids, mask), eager(token_ids, mask), atol=1e-5)
    assert dict(torch._dynamo.utils.counters["frames"]) == frames


def test_compile_layers_compiles_the_int8_tables_quantizers():
    # the recipes' tables: on a W1A1 network a last-bit difference between compiled and eager
    # layers flips signs, so the tables' quantizers are compared alone, bit for bit
    params = {
        "type": "bitmaps_binary_bert",
        "bert_config": dict(TINY_BERT_CONFIG, vocab_size=120),
        "compile_layers": True,
        "binarized_components": list(LINEAR_COMPONENTS) + list(TABLES),
        "component_overrides": {table: {"weights": "int8"} for table in TABLES},
    }
    embedder = TokenEmbedder.from_params(Params(params)).train()
    keys = list(embedder.state_dict())
    with embedder._compilation():
        pass
    assert list(embedder.state_dict()) == keys
    tables = [m for m in embedder.bert.embeddings.modules() if isinstance(m, QuantizedEmbedding)]
    assert len(tables) == 2
    for table in tables:
        assert table.weight_quantizer._compiled_call_impl is not None
        results = []
        for stance in ("force_eager", "default"):
            with torch.compiler.set_stance(stance):
                quantized = table.quantized_weight()
            (quantized * torch.arange(quantized.numel()).reshape(quantized.shape)).sum().backward()
            results.append((quantized.detach(), table.weight.grad))
            table.weight.grad = None
        (eager, eager_grad), (compiled, compiled_grad) = results
        assert torch.equal(compiled, eager) and torch.equal(compiled_grad, eager_grad)


@pytest.mark.parametrize("compile_layers", [False, True])  # a compile_layers archive can teach too
def test_a_frozen_encoder_runs_its_forward_compiled(compile_layers):
    # a distillation teacher: evaluation mode, no gradients, compiled all the same
    def build():
        torch.manual_seed(0)
        params = {"type": "bitmaps_binary_bert", "bert_config": dict(TINY_BERT_CONFIG, vocab_size=120), "compile_layers": compile_layers}
        return TokenEmbedder.from_params(Params(params)).eval()

    eager, compiled = build(), build()
    with pytest.raises(ConfigurationError, match="trainable"):
        compiled.compile_frozen_layers()
    compiled.requires_grad_(False).compile_frozen_layers()
    token_ids, mask = _inputs()
    frames = torch._dynamo.utils.counters["frames"]["ok"]
    with torch.no_grad():
        expected = eager.encode_with_internals(token_ids, mask).hidden_states
        got = compiled.encode_with_internals(token_ids, mask).hidden_states
    assert torch._dynamo.utils.counters["frames"]["ok"] > frames
    assert all(torch.allclose(g, e, atol=1e-5) for g, e in zip(got, expected))


def test_compiled_layers_draw_dropout_masks_from_a_counter_dropout_reseeded_every_step():
    # no forward pass here: compilation itself is tested above
    embedder = TokenEmbedder.from_params(
        Params(
            {
                "type": "bitmaps_binary_bert",
                "bert_config": dict(TINY_BERT_CONFIG, vocab_size=120, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.2),
                "compile_layers": True,
            }
        )
    ).train()
    # in place from the start, so that hooks registered before training see them
    layer_dropouts = [m for layer in embedder.bert.encoder.layer for m in layer.modules() if "Dropout" in type(m).__name__]
    keys = list(embedder.state_dict())
    with embedder._compilation():
        pass
    assert layer_dropouts == [m for layer in embedder.bert.encoder.layer for m in layer.modules() if "Dropout" in type(m).__name__]
    assert len(layer_dropouts) == 3 * TINY_BERT_CONFIG["num_hidden_layers"]
    assert all(isinstance(m, CounterDropout) and m.training for m in layer_dropouts)
    assert sorted({m.p for m in layer_dropouts}) == [0.1, 0.2]
    assert type(embedder.bert.embeddings.dropout) is torch.nn.Dropout  # eager, outside the layers
    assert list(embedder.state_dict()) == keys
    seeds = [int(m.seed) for m in layer_dropouts]
    assert len(set(seeds)) == len(seeds)
    with embedder._compilation():
        pass
    assert all(int(m.seed) != seed for m, seed in zip(layer_dropouts, seeds))


def test_an_untrained_compile_layers_model_traces_like_an_eager_one():
    # a compile_layers archive loaded to evaluate or export (the ONNX export traces the encoder)
    # must hold no dynamo-wrapped layers: compilation waits for the first training step
    torch.manual_seed(0)
    embedder = TokenEmbedder.from_params(
        Params({"type": "bitmaps_binary_bert", "bert_config": dict(TINY_BERT_CONFIG, vocab_size=120), "compile_layers": True})
    ).eval()
    token_ids, mask = _inputs()
    frames = dict(torch._dynamo.utils.counters["frames"])
    traced = torch.jit.trace(embedder, (token_ids, mask), check_trace=False)
    assert torch.allclose(traced(token_ids, mask), embedder(token_ids, mask), atol=1e-6)
    assert dict(torch._dynamo.utils.counters["frames"]) == frames


def test_num_hidden_layers_keeps_the_first_layers(tiny_bert_dir):
    embedder = TokenEmbedder.from_params(
        Params({"type": "bitmaps_binary_bert", "model_name": str(tiny_bert_dir), "binarize": False, "num_hidden_layers": 1})
    ).eval()
    assert len(embedder.bert.encoder.layer) == embedder.config.num_hidden_layers == 1
    full = BertModel.from_pretrained(str(tiny_bert_dir), add_pooling_layer=False).eval()
    token_ids, mask = _inputs()
    # the first layer's output of the whole checkpoint
    expected = full(input_ids=token_ids, attention_mask=mask, output_hidden_states=True).hidden_states[1]
    assert torch.allclose(embedder(token_ids, mask), expected, atol=1e-6)
    for bad, message in ((3, "has 2 layers, fewer than 3"), (0, "positive number")):
        with pytest.raises(ConfigurationError, match=message):
            TokenEmbedder.from_params(
                Params({"type": "bitmaps_binary_bert", "model_name": str(tiny_bert_dir), "num_hidden_layers": bad})
            )
