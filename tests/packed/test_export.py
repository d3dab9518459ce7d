import logging
import tarfile
import tempfile
from pathlib import Path

import pytest
import numpy as np
import torch

from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.commands.train import train_model
from allennlp.data import Batch
from allennlp.models.archival import load_archive

from bitmaps_allennlp.models.packed_masked_lm import PackedMaskedLanguageModel
from bitmaps_allennlp.commands.packed_archive import export_archive
from bitmaps_allennlp.packed.packed_linear import PackedLinear
from tests.model_configs import tiny_masked_lm_config


@pytest.fixture(scope="module")
def trained_archives(tiny_bert_dir, corpus_path, valid_corpus_path, tmp_path_factory):
    archives = {}
    variants = {
        "binary": {},
        "learned": {"weight_scale": "learned"},
        # XNOR-Net W1A1: centred weights, mean|x| * sign(x) inputs -> the packed XNOR kernels
        "w1a1": {"activations": "sign", "center_weights": True},
        # W1A8: int8 absmax inputs -> the packed table-lookup kernels
        "w1a8": {"activations": "int8"},
        # BitNet b1.58 W1.58A8: ternary weights as two sign planes on the W1A8 kernels
        "w158a8": {"weights": "ternary", "weight_scale": "per_tensor", "activations": "int8"},
        "full": {"binarize": False},
    }
    for name, options in variants.items():
        config = tiny_masked_lm_config(tiny_bert_dir, corpus_path, valid_corpus_path, **options)
        config["model"]["text_field_embedder"]["token_embedders"]["tokens"]["binarized_components"] = (
            ["query", "value", "ffn_in", "ffn_out"] if name == "learned" else ["query", "key", "value", "attention_output", "ffn_in", "ffn_out"]
        )
        run = tmp_path_factory.mktemp(name)
        train_model(Params(config), serialization_dir=str(run / "run"))
        archives[name] = run / "run" / "model.tar.gz"
    return archives


def _masked_logits(source, packed, corpus_path):
    """The source archive's and the packed archive's logits on the same masked batch."""
    tensors = _batch(source, corpus_path)
    source.model.eval()
    with torch.no_grad():
        return (
            source.model.masked_logits(tensors["tokens"], tensors["masked_positions"]),
            packed.model.masked_logits(tensors["tokens"], tensors["masked_positions"]),
        )


def _batch(archive, corpus_path):
    reader = archive.validation_dataset_reader
    instances = list(reader.read(corpus_path))
    for instance in instances:
        reader.apply_token_indexers(instance)
    batch = Batch(instances)
    batch.index_instances(archive.model.vocab)
    return batch.as_tensor_dict()


@pytest.mark.parametrize("name", ["binary", "learned", "w1a1", "w1a8", "w158a8"])
def test_packed_logits_match_the_training_model(name, trained_archives, corpus_path, tmp_path):
    output = tmp_path / "packed.tar.gz"
    sizes = export_archive(trained_archives[name], output, embeddings="fp32")
    source, packed = load_archive(trained_archives[name]), load_archive(output)
    assert isinstance(packed.model, PackedMaskedLanguageModel)
    expected_linears = 2 * (4 if name == "learned" else 6)
    packed_linears = [m for m in packed.model.modules() if isinstance(m, PackedLinear)]
    assert len(packed_linears) == expected_linears
    assert {m.scheme.name for m in packed_linears} == {{"w1a1": "w1a1", "w1a8": "w1a8", "w158a8": "w158a8"}.get(name, "w1a32")}
    expected, got = _masked_logits(source, packed, corpus_path)
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)
    # and through forward: the same loss, metrics and predictions
    tensors = _batch(source, corpus_path)
    with torch.no_grad():
        a, b = source.model(**tensors), packed.model(**tensors)
    assert torch.allclose(a["loss"], b["loss"], atol=1e-6)
    assert torch.equal(a["top_ids"], b["top_ids"])
    # 1 bit per weight (2 for ternary; rows padded to 64-bit words) plus one fp32 scale per output channel
    planes = 2 if name == "w158a8" else 1
    expected_bytes = sum(m.out_features * (planes * ((m.in_features + 63) // 64) * 8 + 4) for m in packed_linears)
    linears = packed_linears
    assert sizes.stored["binarized linear weights"] == expected_bytes
    assert sizes.fp32["binarized linear weights"] == sum(4 * m.out_features * m.in_features for m in linears)


def test_fp16_export_halves_the_rest(trained_archives, corpus_path, tmp_path):
    full, half = tmp_path / "fp32.tar.gz", tmp_path / "fp16.tar.gz"
    sizes32 = export_archive(trained_archives["binary"], full, embeddings="fp32")
    sizes16 = export_archive(trained_archives["binary"], half, fp16=True, embeddings="fp16")
    assert sizes16.stored["embeddings"] * 2 == sizes32.stored["embeddings"]
    assert sizes16.stored["other (LayerNorm, biases, ...)"] * 2 == sizes32.stored["other (LayerNorm, biases, ...)"]
    assert sizes16.stored["binarized linear weights"] == sizes32.stored["binarized linear weights"]
    source, packed = load_archive(trained_archives["binary"]), load_archive(half)
    expected, got = _masked_logits(source, packed, corpus_path)
    assert torch.allclose(got, expected, atol=2e-2)


def test_full_precision_model_is_refused(trained_archives, tmp_path):
    with pytest.raises(ConfigurationError, match="no binarized linear"):
        export_archive(trained_archives["full"], tmp_path / "packed.tar.gz")
    assert not (tmp_path / "packed.tar.gz").exists()
    assert list(tmp_path.iterdir()) == []


def test_a_truncated_or_packed_archive_is_refused_by_name(trained_archives, tmp_path, monkeypatch):
    # a copy cut short fails inside gzip, half-way through the extraction: the error names the
    # file, and no partly extracted temporary folder stays behind (AllenNLP's own extraction
    # leaves one)
    data = Path(trained_archives["binary"]).read_bytes()
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(data[: len(data) // 2])
    scratch = tmp_path.parent / (tmp_path.name + "_tempdir")
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with pytest.raises(ConfigurationError, match="truncated.tar.gz: truncated or corrupt archive"):
        export_archive(truncated, tmp_path / "out.tar.gz")
    assert list(scratch.iterdir()) == []
    packed = tmp_path / "packed.tar.gz"
    export_archive(trained_archives["binary"], packed)
    with pytest.raises(ConfigurationError, match="already packed"):
        export_archive(packed, tmp_path / "again.tar.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["packed.tar.gz", "truncated.tar.gz"]


def test_a_scheme_override_round_trips_and_runs_xnor_net():
    from transformers import BertModel

    from bitmaps_allennlp.kernels import reference
    from bitmaps_allennlp.modules.bert_binarization import binarize_bert_encoder
    from bitmaps_allennlp.modules.binarization_spec import BinarizationSpec
    from bitmaps_allennlp.packed.export import pack_bert
    from bitmaps_allennlp.packed.file_format import decode_packed_model, encode_packed_model
    from bitmaps_allennlp.packed.packed_bert import build_packed_bert
    from tests.tiny_bert import tiny_bert_config

    torch.manual_seed(0)
    bert = BertModel(tiny_bert_config(60), add_pooling_layer=False).eval()
    binarize_bert_encoder(bert, BinarizationSpec.from_options(["ffn_in", "ffn_out"]))
    packed, _ = pack_bert(bert, scheme="w1a1")  # trained with real inputs, benchmarked as W1A1
    rebuilt, head = build_packed_bert(decode_packed_model(encode_packed_model(packed)))
    assert head == {}
    layer = rebuilt.encoder.layer[1].intermediate.dense
    assert isinstance(layer, PackedLinear) and layer.scheme.name == "w1a1"
    x = torch.randn(3, 5, layer.in_features)
    expected = reference.binary_linear_w1a1(x, layer.packed_weight, layer.scale, layer.bias, layer.in_features)
    with torch.no_grad():
        assert torch.allclose(layer(x), expected, atol=1e-5)
        rebuilt(input_ids=torch.randint(5, 60, (2, 7)))  # the whole encoder runs


def test_unknown_scheme_is_refused():
    from bitmaps_allennlp.packed.file_format import PackedFormatError, decode_packed_model, encode_packed_model
    from bitmaps_allennlp.packed.schemes import SCHEMES
    from tests.packed.test_file_format import LINEAR, _small

    packed = _small()
    packed.linears[LINEAR]["scheme"] = "w2a2"
    with pytest.raises(PackedFormatError, match="scheme is 'w2a2', expected one of") as info:
        decode_packed_model(encode_packed_model(packed))
    assert str(sorted(SCHEMES)) in str(info.value)


def _binarized_bert(**config):
    from transformers import BertConfig, BertModel

    from bitmaps_allennlp.modules.bert_binarization import binarize_bert_encoder

    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=1000, **config), add_pooling_layer=False).eval()
    binarize_bert_encoder(bert)
    return bert


def test_minilm_sized_packed_encoder_matches_the_fake_quantized_one():
    from bitmaps_allennlp.packed.export import pack_bert
    from bitmaps_allennlp.packed.file_format import decode_packed_model, encode_packed_model
    from bitmaps_allennlp.packed.packed_bert import build_packed_bert

    bert = _binarized_bert(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
    packed, _ = pack_bert(bert, embeddings="fp32")
    rebuilt, _ = build_packed_bert(decode_packed_model(encode_packed_model(packed)))
    ids = torch.randint(5, 1000, (2, 128))
    mask = torch.ones_like(ids)
    mask[1, 100:] = 0
    with torch.no_grad():
        expected = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        got = rebuilt(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_bert_base_binarized_linears_take_at_most_1_28_of_their_fp32_bytes():
    from bitmaps_allennlp.packed.export import pack_bert

    bert = _binarized_bert(hidden_size=768, num_hidden_layers=1, num_attention_heads=12, intermediate_size=3072)
    _, sizes = pack_bert(bert)
    fp32 = sizes.fp32["binarized linear weights"] + sizes.fp32["biases of binarized linears"]
    stored = sizes.stored["binarized linear weights"] + sizes.stored["biases of binarized linears"]
    assert fp32 / stored >= 28


def test_packed_encoder_is_built_without_meta_tensors_or_gradients():
    from bitmaps_allennlp.packed.export import pack_bert
    from bitmaps_allennlp.packed.packed_bert import build_packed_bert

    bert = _binarized_bert(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    for use_meta_device in (True, False):
        rebuilt, _ = build_packed_bert(pack_bert(bert, embeddings="fp32")[0], use_meta_device=use_meta_device)
        tensors = list(rebuilt.parameters()) + list(rebuilt.buffers())
        assert not any(t.is_meta or t.requires_grad for t in tensors)
        assert torch.equal(rebuilt.embeddings.position_ids, bert.embeddings.position_ids)
        ids = torch.randint(5, 1000, (1, 9))
        with torch.no_grad():
            assert torch.allclose(rebuilt(input_ids=ids).last_hidden_state, bert(input_ids=ids).last_hidden_state, atol=1e-5)


@pytest.mark.parametrize(
    "knobs, message",
    [
        ({"binarized_components": ["query", "word_embeddings"], "weights": "ternary"}, "is a ternary embedding table"),
    ],
)
def test_what_the_packed_format_cannot_hold_is_refused_naming_the_module(knobs, message):
    from transformers import BertModel

    from bitmaps_allennlp.modules.bert_binarization import binarize_bert_encoder
    from bitmaps_allennlp.modules.binarization_spec import BinarizationSpec
    from bitmaps_allennlp.modules.component_quantization import ComponentQuantization
    from bitmaps_allennlp.packed.export import pack_bert
    from tests.tiny_bert import tiny_bert_config

    bert = BertModel(tiny_bert_config(60), add_pooling_layer=False).eval()
    components = knobs.pop("binarized_components", ["query", "key", "value", "attention_output", "ffn_in", "ffn_out"])
    attention = knobs.pop("attention", "softmax")
    binarize_bert_encoder(bert, BinarizationSpec.from_options(components, ComponentQuantization(**knobs), attention=attention))
    with pytest.raises(ConfigurationError, match=message):
        pack_bert(bert)


def test_packed_archive_carries_its_tokenizer(trained_archives, tiny_bert_dir, corpus_path, tmp_path):
    # an archive copied to another machine must not need the checkpoint it was trained from
    output = tmp_path / "packed.tar.gz"
    export_archive(trained_archives["binary"], output)
    with tarfile.open(output) as tar:
        assert "tokenizer/vocab.txt" in tar.getnames()
    expected = _batch(load_archive(output), corpus_path)["tokens"]["tokens"]["token_ids"]
    hidden = tiny_bert_dir.with_name(tiny_bert_dir.name + "_moved")
    tiny_bert_dir.rename(hidden)
    try:
        packed = load_archive(output)
        assert str(tiny_bert_dir) not in packed.dataset_reader._tokenizer.name_or_path
        got = _batch(packed, corpus_path)["tokens"]["tokens"]["token_ids"]
    finally:
        hidden.rename(tiny_bert_dir)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("packed_file", ["/etc/hostname", "../outside.safetensors", "tokenizer/../../x"])
def test_a_packed_archive_reads_its_packed_file_from_inside_only(packed_file, trained_archives, tmp_path):
    import json

    from bitmaps_allennlp.packed.file_format import PackedFormatError

    output = tmp_path / "packed.tar.gz"
    export_archive(trained_archives["binary"], output)
    unpacked = tmp_path / "unpacked"
    with tarfile.open(output) as tar:
        tar.extractall(unpacked)
    config = json.loads((unpacked / "config.json").read_text())
    config["model"]["packed_file"] = packed_file
    (unpacked / "config.json").write_text(json.dumps(config))
    with pytest.raises(PackedFormatError, match="is not a file inside the archive"):
        load_archive(str(unpacked))


@pytest.mark.parametrize("embeddings", ["int8_g64", "int8", "int8_col", "fp16"])
def test_quantized_embedding_tables_are_what_the_model_computes_with(embeddings, trained_archives, corpus_path, tmp_path, caplog):
    """An int8 (fp16) table export computes exactly what the source model computes with its word
    and position tables replaced by their int8 (fp16) values: the tied decoder included. (The tiny
    model's 32 columns make one int8_g64 group per row: the groups are tested below.) The export
    warns that it rounds tables trained in fp32; the fp32 export does not."""
    from bitmaps_allennlp.quantization.int8 import quantize_int8_rows

    output = tmp_path / "packed.tar.gz"
    with caplog.at_level(logging.WARNING, logger="bitmaps_allennlp.packed.export"):
        sizes = export_archive(trained_archives["w1a8"], output, embeddings=embeddings)
    assert f"embeddings.word_embeddings and embeddings.position_embeddings trained in fp32 and stored as {embeddings}" in caplog.text
    caplog.clear()
    full = tmp_path / "full.tar.gz"
    with caplog.at_level(logging.WARNING, logger="bitmaps_allennlp.packed.export"):
        full_sizes = export_archive(trained_archives["w1a8"], full, embeddings="fp32")
    assert "trained in fp32 and stored as" not in caplog.text
    source, packed = load_archive(trained_archives["w1a8"]), load_archive(output)
    embedding_module = source.model._encoder.bert.embeddings
    with torch.no_grad():
        for table in (embedding_module.word_embeddings, embedding_module.position_embeddings):
            if embeddings == "int8_col":  # per row after dividing each column by sqrt(its max |value|)
                column = table.weight.abs().amax(dim=0).sqrt()
                levels, step = quantize_int8_rows(table.weight / column)
                table.weight.copy_(levels * step * column)
            elif embeddings.startswith("int8"):
                levels, step = quantize_int8_rows(table.weight)
                table.weight.copy_(levels * step)
            else:
                table.weight.copy_(table.weight.half().float())
    expected, got = _masked_logits(source, packed, corpus_path)
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)
    config = source.model._encoder.config
    rows, dim = config.vocab_size + config.max_position_embeddings, config.hidden_size
    per_row = dim + 4 if embeddings.startswith("int8") else dim * 2  # int8 entries and one fp32 step per row
    token_types = config.type_vocab_size * dim * 4  # not an option table: kept as it is
    columns = 2 * dim * 4 if embeddings == "int8_col" else 0  # a scale per column, word and position tables
    assert sizes.stored["embeddings"] == rows * per_row + columns + token_types
    assert full_sizes.stored["embeddings"] == rows * dim * 4 + token_types


def test_binarized_embedding_tables_and_head_export_as_trained(tiny_bert_dir, corpus_path, valid_corpus_path, tmp_path):
    config = tiny_masked_lm_config(tiny_bert_dir, corpus_path, valid_corpus_path, activations="int8")
    config["model"]["text_field_embedder"]["token_embedders"]["tokens"]["binarized_components"] = [
        "query", "key", "value", "attention_output", "ffn_in", "ffn_out", "word_embeddings", "position_embeddings", "mlm_head",
    ]
    config["trainer"]["num_epochs"] = 1
    train_model(Params(config), serialization_dir=str(tmp_path / "run"))
    output = tmp_path / "packed.tar.gz"
    sizes = export_archive(tmp_path / "run" / "model.tar.gz", output)  # --embeddings does not apply
    source, packed = load_archive(tmp_path / "run" / "model.tar.gz"), load_archive(output)
    expected, got = _masked_logits(source, packed, corpus_path)
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)
    # two binary tables: 1 bit per entry plus a scale per row
    rows = source.model._encoder.config.vocab_size + source.model._encoder.config.max_position_embeddings
    dim = source.model._encoder.config.hidden_size
    assert sizes.stored["embeddings"] == rows * ((dim + 63) // 64 * 8 + 4) + 2 * dim * 4  # + token types (fp32)
    # and the head's transform is a packed W1A8 linear, as trained
    dense = packed.model._head.dense
    assert isinstance(dense, PackedLinear) and dense.scheme.name == "w1a8"
    tensors = _batch(source, corpus_path)
    assert torch.equal(_top_ids(source, tensors), _top_ids(packed, tensors))


def test_int8_trained_tables_export_exactly_whatever_embeddings_says(tiny_bert_dir, corpus_path, valid_corpus_path, tmp_path, caplog):
    """Word and position tables trained int8 (`weights: "int8"`, absmax per row) are stored in the
    `int8` table format, which holds the trained values exactly: the packed W1A1 model (1-bit
    inputs, which a rounding of its input tables the training never saw would move) computes the
    source's logits, with `--embeddings fp32` asked for and ignored for those tables."""
    from bitmaps_runtime.archive import load_packed_archive

    config = tiny_masked_lm_config(
        tiny_bert_dir, corpus_path, valid_corpus_path, activations="sign", center_weights=True,
        binarized_components=["query", "key", "value", "attention_output", "ffn_in", "ffn_out", "word_embeddings", "position_embeddings"],
        component_overrides={"word_embeddings": {"weights": "int8"}, "position_embeddings": {"weights": "int8"}},
    )
    config["trainer"]["num_epochs"] = 1
    train_model(Params(config), serialization_dir=str(tmp_path / "run"))
    output = tmp_path / "packed.tar.gz"
    sizes = export_archive(tmp_path / "run" / "model.tar.gz", output, embeddings="fp32")
    source, packed = load_archive(tmp_path / "run" / "model.tar.gz"), load_archive(output)
    expected, got = _masked_logits(source, packed, corpus_path)
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)
    # nothing is rounded at export, so the default export has nothing to warn of
    with caplog.at_level(logging.WARNING, logger="bitmaps_allennlp.packed.export"):
        export_archive(tmp_path / "run" / "model.tar.gz", tmp_path / "default.tar.gz")
    assert "trained in fp32" not in caplog.text
    tensors = _batch(source, corpus_path)
    assert torch.equal(_top_ids(source, tensors), _top_ids(packed, tensors))
    bert_config = source.model._encoder.config
    rows, dim = bert_config.vocab_size + bert_config.max_position_embeddings, bert_config.hidden_size
    assert sizes.stored["embeddings"] == rows * (dim + 4) + bert_config.type_vocab_size * dim * 4
    # the stored tables are the trained quantizer's values, bit for bit
    for name in ("word_embeddings", "position_embeddings"):
        with torch.no_grad():
            trained = getattr(source.model._encoder.bert.embeddings, name).quantized_weight()
        assert torch.equal(getattr(packed.model._bert.embeddings, name).weight, trained)
    tables = load_packed_archive(output).packed.tables
    assert {name: tables[f"embeddings.{name}"]["format"] for name in ("word_embeddings", "position_embeddings")} == {
        "word_embeddings": "int8", "position_embeddings": "int8"}


def _top_ids(archive, tensors):
    with torch.no_grad():
        return archive.model(**tensors)["top_ids"]


def test_int8_group_tables_quantize_each_group_of_64_on_its_own():
    from bitmaps_allennlp.packed.schemes import TABLE_FORMATS
    from bitmaps_allennlp.quantization.int8 import quantize_int8_rows

    torch.manual_seed(0)
    table = torch.randn(5, 150)
    table[0, 3] = 40.0  # an outlier: it sets the step of its own group only
    stored = TABLE_FORMATS["int8_g64"].pack(table)
    assert stored["q"].shape == (5, 150) and stored["step"].shape == (5, 3)
    for row in range(5):
        for group, (start, stop) in enumerate(((0, 64), (64, 128), (128, 150))):
            levels, step = quantize_int8_rows(table[row, start:stop])
            assert np.array_equal(stored["q"][row, start:stop], levels.numpy().astype(np.int8))
            assert stored["step"][row, group] == step.item()
    unpacked = TABLE_FORMATS["int8_g64"].unpack({k: torch.from_numpy(v) for k, v in stored.items()}, 150)
    per_row = TABLE_FORMATS["int8"].unpack({k: torch.from_numpy(v) for k, v in TABLE_FORMATS["int8"].pack(table).items()}, 150)
    assert (unpacked - table).abs()[0, 64:].max() < 0.02 < (per_row - table).abs()[0, 64:].max()


def test_int8_column_tables_even_out_rows_that_an_outlier_column_dominates():
    """`int8_col`: every row of a table with one large column (as BERT word tables have) keeps its
    small values far more precisely than per-row steps do, for one fp32 scale per column; a zero
    column keeps scale 1, and the stored values are the per-row rule's on the divided table."""
    from bitmaps_allennlp.packed.schemes import TABLE_FORMATS
    from bitmaps_allennlp.quantization.int8 import quantize_int8_rows

    torch.manual_seed(0)
    table = torch.randn(50, 96) * 0.05
    table[:, 7] *= 100.0  # an outlier dimension, large in every row
    table[:, 9] = 0.0
    stored = TABLE_FORMATS["int8_col"].pack(table)
    assert stored["q"].shape == (50, 96) and stored["step"].shape == (50,) and stored["column"].shape == (96,)
    column = table.abs().amax(dim=0).sqrt()
    column[9] = 1.0
    assert np.array_equal(stored["column"], column.numpy())
    levels, step = quantize_int8_rows(table / column)
    assert np.array_equal(stored["q"], levels.numpy().astype(np.int8)) and np.array_equal(stored["step"], step.reshape(-1).numpy())
    unpack = lambda name: TABLE_FORMATS[name].unpack(
        {k: torch.from_numpy(v) for k, v in TABLE_FORMATS[name].pack(table).items()}, 96
    )
    by_column, per_row = unpack("int8_col"), unpack("int8")
    others = [c for c in range(96) if c != 7]
    assert (by_column - table)[:, others].pow(2).mean() * 4 < (per_row - table)[:, others].pow(2).mean()
    assert torch.equal(by_column[:, 9], torch.zeros(50))
