"""Trains every config in training_configs/ for a couple of steps, with its encoder and data
replaced by the tiny test ones: a config that no longer parses or builds fails here."""
import copy
from pathlib import Path
from typing import Any, Dict

import pytest
import torch

from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.commands.train import train_model
from allennlp.data import Batch, Vocabulary
from allennlp.models import Model
from allennlp.models.archival import load_archive

from bitmaps_allennlp.commands.packed_archive import export_archive
from bitmaps_allennlp.training import freed_memory

CONFIG_DIR = Path(__file__).resolve().parents[1] / "training_configs"
CONFIGS = sorted(CONFIG_DIR.glob("*.jsonnet"))


def _walk(node: Any, fn) -> None:
    if isinstance(node, dict):
        fn(node)
        for value in node.values():
            _walk(value, fn)
    elif isinstance(node, list):
        for value in node:
            _walk(value, fn)


def _tiny(config: Dict[str, Any], tiny_bert_dir, teacher_dir, train_path, valid_path) -> Dict[str, Any]:
    def shrink(node: Dict[str, Any]) -> None:
        if "model_name" in node:
            node["model_name"] = str(tiny_bert_dir)
        if "teacher" in node:
            # a Hugging Face checkpoint with an MLM head stands in for the teacher's archive
            node["teacher"] = str(teacher_dir)
        if node.get("compile_layers"):
            # two steps cannot repay a compilation (half a minute a config); the compiled
            # layers are tested in tests/token_embedders
            node["compile_layers"] = False
        if node.get("type") == "bitmaps_masked_lm_corpus":
            node["max_length"] = 16
            node.pop("max_instances", None)

    _walk(config, shrink)
    config["train_data_path"] = str(train_path)
    config["validation_data_path"] = str(valid_path)
    for loader in ("data_loader", "validation_data_loader"):
        if loader in config:
            config[loader]["batch_size"] = 4
            if "max_instances_in_memory" in config[loader]:
                config[loader]["max_instances_in_memory"] = 8
            if "batches_per_epoch" in config[loader]:
                config[loader]["batches_per_epoch"] = 2
    config["trainer"].update(num_epochs=1, cuda_device=-1)
    return config


def _redirect_pretrained_initializers(config: Dict[str, Any], directory: Path) -> None:
    """A config that starts from another run's weights file gets one from a tiny model of the
    same architecture, so the initializer really loads weights."""
    model_params = config["model"]
    regexes = model_params.get("initializer", {}).get("regexes", [])
    pretrained = [init for _, init in regexes if init.get("type") in ("pretrained", "bitmaps_start_from")]
    if not pretrained:
        return
    source = copy.deepcopy({k: v for k, v in model_params.items() if k != "initializer"})
    vocab = Vocabulary.from_params(Params(copy.deepcopy(config["vocabulary"])))
    torch.manual_seed(7)
    weights = directory / "source_weights.th"
    torch.save(Model.from_params(vocab=vocab, params=Params(source)).state_dict(), weights)
    for init in pretrained:
        init["weights_file_path"] = str(weights)
    return weights


# the teacher is fp32: nothing to pack, and `bitmaps-export` says so
NOT_EXPORTABLE = {"teacher_minilm_mlm": "no binarized linear", "dense_small_distill": "no binarized linear"}


def _export_and_compare(archive_file, corpus_path, tmp_path) -> None:
    """The packed export (fp32 tables: exact parity) computes the trained model's logits."""
    output = tmp_path / "packed.tar.gz"
    export_archive(archive_file, output, embeddings="fp32")
    source, packed = load_archive(str(archive_file)), load_archive(str(output))
    reader = source.validation_dataset_reader
    instances = list(reader.read(str(corpus_path)))[:8]
    for instance in instances:
        reader.apply_token_indexers(instance)
    batch = Batch(instances)
    batch.index_instances(source.model.vocab)
    tensors = batch.as_tensor_dict()
    source.model.eval()
    with torch.no_grad():
        expected = source.model.masked_logits(tensors["tokens"], tensors["masked_positions"])
        got = packed.model.masked_logits(tensors["tokens"], tensors["masked_positions"])
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("config_path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_trains_and_exports(config_path, tiny_bert_dir, tiny_bert_with_head_dir, corpus_path, valid_corpus_path, tmp_path, monkeypatch):
    # a process-wide malloc setting: not in the test process (tests/test_freed_memory.py)
    monkeypatch.setattr(freed_memory, "keep_freed_memory", lambda: True)
    config = Params.from_file(str(config_path)).as_dict(quiet=True)
    config = _tiny(config, tiny_bert_dir, tiny_bert_with_head_dir, corpus_path, valid_corpus_path)
    weights = _redirect_pretrained_initializers(config, tmp_path)
    model = train_model(Params(config), serialization_dir=str(tmp_path / "run"))
    assert (tmp_path / "run" / "model.tar.gz").is_file()
    if config_path.stem in NOT_EXPORTABLE:
        with pytest.raises(ConfigurationError, match=NOT_EXPORTABLE[config_path.stem]):
            export_archive(tmp_path / "run" / "model.tar.gz", tmp_path / "packed.tar.gz")
    else:
        _export_and_compare(tmp_path / "run" / "model.tar.gz", valid_corpus_path, tmp_path)
    if weights is not None:
        # the encoder started from the weights file, not from the checkpoint: after two small
        # steps it is still much closer to the file's weights
        source = torch.load(weights)
        name = "_text_field_embedder.token_embedder_tokens.bert.embeddings.word_embeddings.weight"
        trained = model.state_dict()[name]
        assert (trained - source[name]).abs().max() < 0.05


def test_every_config_is_covered():
    assert {p.stem for p in CONFIGS} >= {
        "teacher_minilm_mlm",
        "binary_minilm_mlm",
        "demo_binary_bert_mlm",
        "xnor_w1_distill",
        "bibert_w1a1",
        "bit_stage1_w1a8",
        "bit_stage2_w1a1",
        "bitnet_b158_w158a8",
        "dense_small_distill",
    }


def _tokens_embedder(config: Dict[str, Any]) -> Dict[str, Any]:
    return config["model"]["text_field_embedder"]["token_embedders"]["tokens"]


RECIPES = ["xnor_w1_distill", "bit_stage1_w1a8", "bit_stage2_w1a1", "bitnet_b158_w158a8", "bibert_w1a1"]


@pytest.mark.parametrize("name", RECIPES)
def test_recipes_train_their_tables_int8_as_the_default_export_stores_them(name):
    tokens = _tokens_embedder(Params.from_file(str(CONFIG_DIR / f"{name}.jsonnet")).as_dict(quiet=True))
    for table in ("word_embeddings", "position_embeddings"):
        assert table in tokens["binarized_components"]
        assert tokens["component_overrides"][table] == {"weights": "int8"}
    # the recipe's own overrides survive beside the tables'
    if name == "bit_stage2_w1a1":
        assert tokens["component_overrides"]["ffn_out"] == {"activations": "two_set"}


def _recipe_snippet(tables: str) -> str:
    return (
        'local lib = import "lib/distillation.libsonnet";\n'
        f'lib.recipe(knobs={{ weights: "binary" }}, loss_weights={{ soft_ce: 1.0 }}, init_from="w.th", tables="{tables}")'
    )


def test_a_recipe_keeps_fp32_tables_when_told_and_names_a_bad_choice():
    import json

    import _jsonnet

    fp32 = _tokens_embedder(json.loads(_jsonnet.evaluate_snippet("recipe", _recipe_snippet("fp32"), jpathdir=str(CONFIG_DIR))))
    assert "component_overrides" not in fp32 and "binarized_components" not in fp32
    dense = _tokens_embedder(Params.from_file(str(CONFIG_DIR / "dense_small_distill.jsonnet")).as_dict(quiet=True))
    assert "component_overrides" not in dense
    with pytest.raises(RuntimeError, match='tables must be "int8" or "fp32", got "fp16"'):
        _jsonnet.evaluate_snippet("recipe", _recipe_snippet("fp16"), jpathdir=str(CONFIG_DIR))
