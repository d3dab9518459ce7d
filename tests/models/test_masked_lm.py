import math

import pytest
import torch

from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.common.testing import ModelTestCase
from allennlp.data import Batch, Vocabulary
from allennlp.models import Model

from bitmaps_allennlp.models.masked_lm import BinaryMaskedLanguageModel
from tests.model_configs import tiny_masked_lm_config, write_config


class TestBinaryMaskedLanguageModel(ModelTestCase):
    @pytest.fixture(autouse=True)
    def _paths(self, tiny_bert_dir, corpus_path, valid_corpus_path, tmp_path):
        self.tiny_bert_dir = tiny_bert_dir
        self.corpus_path = corpus_path
        self.valid_corpus_path = valid_corpus_path
        self.tmp = tmp_path

    def _set_up(self, **embedder):
        config = tiny_masked_lm_config(
            self.tiny_bert_dir, self.corpus_path, self.valid_corpus_path, **embedder
        )
        self.param_file = write_config(config, self.tmp)
        self.set_up_model(self.param_file, self.corpus_path)

    @pytest.mark.parametrize("weight_scale", ["mean_abs", "learned"])
    def test_binarized_model_can_train_save_and_load(self, weight_scale):
        self._set_up(weight_scale=weight_scale)
        self.ensure_model_can_train_save_and_load(self.param_file)

    def test_binarized_embeddings_and_head_train_save_and_load(self):
        from bitmaps_allennlp.modules.quantized_embedding import QuantizedEmbedding
        from bitmaps_allennlp.modules.quantized_linear import QuantizedLinear

        components = ["query", "ffn_in", "word_embeddings", "position_embeddings", "mlm_head"]
        self._set_up(binarized_components=components, weights="binary", activations="sign")
        embeddings = self.model._encoder.bert.embeddings
        assert isinstance(embeddings.word_embeddings, QuantizedEmbedding)
        assert isinstance(embeddings.position_embeddings, QuantizedEmbedding)
        assert isinstance(self.model._head.dense, QuantizedLinear)
        # the tied decoder reads the binarized table: one magnitude per row
        table = self.model.word_embeddings
        assert torch.allclose(table.abs(), table.abs().amax(1, keepdim=True))
        self.ensure_model_can_train_save_and_load(self.param_file)

    def test_full_precision_model_can_train_save_and_load(self):
        self._set_up(binarize=False)
        self.ensure_model_can_train_save_and_load(self.param_file)

    def test_loss_only_with_labels_and_equals_masked_cross_entropy(self):
        self._set_up()
        self.model.eval()
        batch = Batch(self.instances[:3])
        batch.index_instances(self.vocab)
        tensors = batch.as_tensor_dict()
        labelled = self.model(**tensors)
        unlabelled = self.model(tokens=tensors["tokens"], masked_positions=tensors["masked_positions"])
        assert "loss" in labelled and "loss" not in unlabelled
        assert torch.equal(labelled["top_ids"], unlabelled["top_ids"])
        # full-vocabulary logits at every position, then the masked ones: the same loss
        hidden = self.model._text_field_embedder(tensors["tokens"])
        all_logits = self.model._head(hidden, self.model._encoder.word_embeddings)
        mask = tensors["masked_positions"]
        expected = torch.nn.functional.cross_entropy(all_logits[mask], tensors["target_ids"][mask])
        assert torch.allclose(labelled["loss"], expected, atol=1e-6)
        metrics = self.model.get_metrics(reset=True)
        assert math.isclose(metrics["perplexity"], math.exp(expected.item()), rel_tol=1e-5)

    def test_top_candidates_follow_each_instance_masks(self):
        self._set_up()
        self.model.eval()
        batch = Batch(self.instances[:4])
        batch.index_instances(self.vocab)
        tensors = batch.as_tensor_dict()
        output = self.model.make_output_human_readable(self.model(**tensors))
        counts = tensors["masked_positions"].sum(1).tolist()
        assert output["num_masks"].tolist() == counts
        logits = self.model.masked_logits(tensors["tokens"], tensors["masked_positions"])
        best = logits.argmax(-1).tolist()
        firsts = [mask["tokens"][0] for instance in output["predictions"] for mask in instance]
        assert firsts == [self.vocab.get_token_from_index(i, "tags") for i in best]
        for instance, count in zip(output["predictions"], counts):
            assert len(instance) == count
            probabilities = instance[0]["probabilities"]
            assert probabilities == sorted(probabilities, reverse=True)

    def test_checkpoint_head_is_loaded(self, tiny_bert_with_head_dir):
        from transformers import BertForMaskedLM

        config = tiny_masked_lm_config(tiny_bert_with_head_dir, self.corpus_path, self.valid_corpus_path)
        vocab = Vocabulary.from_params(Params(config["vocabulary"]))
        model = Model.from_params(vocab=vocab, params=Params(config["model"]))
        reference = BertForMaskedLM.from_pretrained(str(tiny_bert_with_head_dir)).cls.predictions
        assert torch.equal(model._head.bias, reference.bias)
        assert torch.equal(model._head.layer_norm.weight, reference.transform.LayerNorm.weight)

    def test_vocabulary_mismatch_is_explained(self):
        config = tiny_masked_lm_config(self.tiny_bert_dir, self.corpus_path, self.valid_corpus_path)
        with pytest.raises(ConfigurationError, match="bitmaps_wordpiece"):
            Model.from_params(vocab=Vocabulary(), params=Params(config["model"]))

    def test_archive_restore_does_not_reload_the_checkpoint(self, monkeypatch):
        self._set_up()
        self.ensure_model_can_train_save_and_load(self.param_file)
        from allennlp.models.archival import load_archive
        from transformers import BertForMaskedLM

        def refuse(*args, **kwargs):
            raise AssertionError("checkpoint weights loaded while restoring an archive")

        monkeypatch.setattr(BertForMaskedLM, "from_pretrained", refuse)
        archive = load_archive(self.TEST_DIR / "save_and_load_test" / "model.tar.gz")
        assert isinstance(archive.model, BinaryMaskedLanguageModel)

    def test_data_free_conversion_of_a_trained_archive(self):
        """Loading a full-precision archive with `binarize: true` binarizes its trained weights
        (how the README's "data-free" row is measured)."""
        from allennlp.models.archival import load_archive

        from bitmaps_allennlp.modules.quantized_linear import QuantizedLinear

        self._set_up(binarize=False)
        self.ensure_model_can_train_save_and_load(self.param_file)
        path = self.TEST_DIR / "save_and_load_test" / "model.tar.gz"
        full = load_archive(path).model
        binary = load_archive(
            path, overrides={"model.text_field_embedder.token_embedders.tokens.binarize": True}
        ).model
        assert sum(isinstance(m, QuantizedLinear) for m in binary.modules()) == 12
        assert not any(isinstance(m, QuantizedLinear) for m in full.modules())
        full_state, binary_state = full.state_dict(), binary.state_dict()
        assert full_state.keys() == binary_state.keys()
        assert all(torch.equal(full_state[k], binary_state[k]) for k in full_state)
