"""Training on a file without text fails when it is read, naming the file, and writes no archive."""
import pytest

from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.commands.train import train_model

from tests.model_configs import tiny_masked_lm_config


@pytest.mark.parametrize("which", ["train_data_path", "validation_data_path"])
def test_training_with_an_empty_file_writes_no_archive(which, tiny_bert_dir, corpus_path, valid_corpus_path, tmp_path):
    empty = tmp_path / "blank.txt"
    empty.write_text("\n\n \n")
    config = tiny_masked_lm_config(tiny_bert_dir, corpus_path, valid_corpus_path)
    config[which] = str(empty)
    config["trainer"]["num_epochs"] = 1
    with pytest.raises(ConfigurationError, match=f"{empty} holds no text"):
        train_model(Params(config), serialization_dir=str(tmp_path / "run"))
    assert not (tmp_path / "run" / "model.tar.gz").exists()
