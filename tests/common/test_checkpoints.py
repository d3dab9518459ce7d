"""A missing local checkpoint is named with its config field, not taken for a hub name."""
import pytest
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import DatasetReader, Vocabulary
from allennlp.modules.token_embedders import TokenEmbedder

from bitmaps_allennlp.common.checkpoints import check_checkpoint, names_a_local_path


@pytest.mark.parametrize(
    "name,local",
    [
        ("bert-base-uncased", False),
        ("sentence-transformers/all-MiniLM-L6-v2", False),
        ("tokenizer", False),  # a packed archive's folder, looked up in its serialization dir first
        ("../shared/data/models/all-MiniLM-L6-v2", True),
        ("./teacher", True),
        ("/abs/model", True),
        ("runs/teacher/model.tar.gz", True),
        ("runs/teacher/best.th", True),
        ("model.tar.gz", True),
    ],
)
def test_paths_are_told_from_hub_names(name, local):
    assert names_a_local_path(name) == local


def test_an_existing_path_and_a_hub_name_pass(tmp_path):
    check_checkpoint(str(tmp_path), "field")
    check_checkpoint("bert-base-uncased", "field")  # left to transformers (hub names still work)


@pytest.mark.parametrize(
    "kind,registry,field",
    [
        ("bitmaps_binary_bert", TokenEmbedder, "bitmaps_binary_bert: model_name"),
        ("bitmaps_masked_lm_corpus", DatasetReader, "bitmaps_masked_lm_corpus: model_name"),
        ("bitmaps_wordpiece", Vocabulary, "bitmaps_wordpiece: model_name"),
    ],
)
def test_the_components_name_a_missing_checkpoint(kind, registry, field, tmp_path):
    missing = str(tmp_path / "models" / "all-MiniLM-L6-v2")
    with pytest.raises(ConfigurationError, match=f"{field}: .*all-MiniLM-L6-v2 does not exist"):
        registry.from_params(Params({"type": kind, "model_name": missing}))
