import re
import shutil

import pytest
import torch

from allennlp.commands.evaluate import evaluate_from_args
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.common.testing import ModelTestCase
from allennlp.data import Batch
from allennlp.models import Model
from allennlp.models.archival import load_archive

from bitmaps_allennlp.metrics.masked_accuracy import MaskedAccuracy
from bitmaps_allennlp.models.distilled_masked_lm import DistilledMaskedLanguageModel, default_layer_map
from bitmaps_allennlp.modules import distillation_losses as losses
from tests.model_configs import tiny_masked_lm_config, write_config

ALL_TERMS = {"mlm": 1.0, "soft_ce": 1.0, "hidden": 1.0, "attention": 1.0, "direction": 1.0}


def distilled_config(tiny_bert_dir, teacher, train_path, valid_path, **model):
    config = tiny_masked_lm_config(tiny_bert_dir, train_path, valid_path)
    config["model"].update(type="bitmaps_distilled_masked_lm", teacher=str(teacher), **model)
    return config


class TestDistilledMaskedLanguageModel(ModelTestCase):
    @pytest.fixture(autouse=True)
    def _paths(self, tiny_bert_dir, tiny_bert_with_head_dir, corpus_path, valid_corpus_path, tmp_path):
        self.tiny_bert_dir = tiny_bert_dir
        self.teacher_dir = tmp_path / "teacher"
        shutil.copytree(tiny_bert_with_head_dir, self.teacher_dir)
        self.corpus_path = corpus_path
        self.valid_corpus_path = valid_corpus_path
        self.tmp = tmp_path

    def _set_up(self, embedder=None, **model):
        config = distilled_config(self.tiny_bert_dir, self.teacher_dir, self.corpus_path, self.valid_corpus_path, **model)
        config["model"]["text_field_embedder"]["token_embedders"]["tokens"].update(embedder or {})
        self.param_file = write_config(config, self.tmp)
        self.set_up_model(self.param_file, self.corpus_path)

    @pytest.mark.parametrize(
        "embedder, attention_loss",
        [
            ({}, "mse"),
            ({"activations": "sign", "attention": "bi_attention", "attention_activations": "sign", "center_weights": True}, "mse"),
            (
                {
                    "activations": "elastic",
                    "component_overrides": {"ffn_out": {"activations": "two_set"}},
                    "attention_activations": "elastic",
                    "attention_probs": "two_set",
                },
                "kl",
            ),
            ({"weights": "ternary", "weight_scale": "per_tensor", "activations": "int8"}, "kl"),
        ],
        ids=["xnor", "bibert", "bit", "bitnet"],
    )
    def test_trains_saves_and_loads_with_the_teacher_unchanged(self, embedder, attention_loss):
        self._set_up(embedder, loss_weights=ALL_TERMS, attention_loss=attention_loss)
        teacher = self.model.teacher
        before = {k: v.clone() for k, v in teacher.state_dict().items()}
        # the teacher is not a parameter of the student
        assert not any(k.startswith("_teacher") for k in self.model.state_dict())
        trained, loaded = self.ensure_model_can_train_save_and_load(self.param_file)
        # the training run loaded its own teacher from the same files: after training it still
        # holds exactly their weights
        assert trained.teacher is not teacher
        assert all(torch.equal(before[k], v) for k, v in trained.teacher.state_dict().items())
        assert loaded.teacher is None

    def test_every_term_is_computed_logged_and_weighted(self):
        self._set_up(loss_weights=ALL_TERMS)
        self.model.train()
        batch = Batch(self.instances[:4])
        batch.index_instances(self.vocab)
        output = self.model(**batch.as_tensor_dict())
        metrics = self.model.get_metrics()
        terms = {name: metrics[f"loss_{name}"] for name in ALL_TERMS}
        assert all(value > 0 for value in terms.values())
        assert torch.isclose(output["loss"], torch.tensor(sum(terms.values())), rtol=1e-5)
        output["loss"].backward()
        assert all(p.grad is None for p in self.model.teacher.parameters())

    def test_compile_layers_compiles_the_losses_and_scores_the_logits_in_one_function(self, monkeypatch):
        self._set_up({"compile_layers": True}, loss_weights={"mlm": 0.5, "soft_ce": 1.0, "hidden": 1.0})
        calls, compiled = [], []

        def scores(student_logits, teacher_logits, targets, temperature):
            calls.append((student_logits.detach(), targets))
            return losses.masked_lm_scores(student_logits, teacher_logits, targets, temperature)

        def spy(loss):
            compiled.append(loss.__name__)
            return scores if loss is losses.masked_lm_scores else loss

        # compiled functions are tested against the eager ones in test_distillation_losses
        monkeypatch.setattr(losses, "compiled", spy)
        self.model._encoder._layers_compiled = True  # the layers stay eager: tested in the embedder's tests
        self.model.train()
        batch = Batch(self.instances[:4])
        batch.index_instances(self.vocab)
        output = self.model(**batch.as_tensor_dict())
        (logits, targets), = calls
        assert self.model.teacher._encoder._frozen_layers_compiled  # the teacher's forward compiled
        assert sorted(set(compiled)) == ["hidden_mse", "masked_lm_scores"]
        metrics = self.model.get_metrics()
        # the metrics from the function's ranks and NLLs are those of the logits themselves
        top1, top5 = MaskedAccuracy(1), MaskedAccuracy(5)
        top1(logits, targets), top5(logits, targets)
        token_nll = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
        assert metrics["accuracy"] == top1.get_metric() and metrics["accuracy_top5"] == top5.get_metric()
        assert metrics["perplexity"] == pytest.approx(token_nll.mean().exp().item(), rel=1e-5)
        assert metrics["loss_mlm"] == pytest.approx(token_nll.mean().item(), rel=1e-5)
        expected = 0.5 * metrics["loss_mlm"] + metrics["loss_soft_ce"] + metrics["loss_hidden"]
        assert torch.isclose(output["loss"], torch.tensor(expected), rtol=1e-5)

    def test_teacher_params_stay_frozen_during_real_training(self):
        self._set_up(loss_weights=ALL_TERMS)
        teacher = self.model.teacher
        before = {k: v.clone() for k, v in teacher.state_dict().items()}
        optimizer = torch.optim.SGD(self.model.parameters(), lr=1.0)
        self.model.train()
        batch = Batch(self.instances[:4])
        batch.index_instances(self.vocab)
        for _ in range(2):
            optimizer.zero_grad()
            self.model(**batch.as_tensor_dict())["loss"].backward()
            optimizer.step()
        assert not teacher.training
        assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())

    def test_outside_training_it_is_the_plain_student(self):
        self._set_up(loss_weights=ALL_TERMS)
        self.model.eval()
        batch = Batch(self.instances[:3])
        batch.index_instances(self.vocab)
        output = self.model(**batch.as_tensor_dict())
        assert "top_ids" in output and "loss_hidden" not in self.model.get_metrics()


def test_the_trained_archive_evaluates_without_its_teacher(tiny_bert_dir, tiny_bert_with_head_dir, corpus_path, valid_corpus_path, tmp_path):
    from allennlp.commands.train import train_model

    teacher = tmp_path / "teacher"
    shutil.copytree(tiny_bert_with_head_dir, teacher)
    config = distilled_config(tiny_bert_dir, teacher, corpus_path, valid_corpus_path, loss_weights={"soft_ce": 1.0, "hidden": 1.0})
    config["trainer"]["num_epochs"] = 1
    train_model(Params(config), serialization_dir=str(tmp_path / "run"))
    shutil.rmtree(teacher)
    archive = tmp_path / "run" / "model.tar.gz"
    assert load_archive(str(archive)).model.teacher is None

    class Args:
        archive_file, input_file, output_file, predictions_output_file = str(archive), str(valid_corpus_path), None, None
        weights_file, cuda_device, overrides, batch_size, batch_weight_key = None, -1, "", None, ""
        extend_vocab, embedding_sources_mapping, auto_names, file_friendly_logging = False, None, "NONE", True

    metrics = evaluate_from_args(Args())
    assert metrics["perplexity"] > 1


@pytest.mark.parametrize(
    "model, message",
    [
        (dict(loss_weights={"kd": 1.0}), r"loss_weights.kd: unknown loss"),
        (dict(loss_weights={"mlm": 0.0}), "every weight is 0"),
        (dict(loss_weights={"mlm": -1.0}), "loss_weights.mlm must be >= 0"),
        (dict(attention_loss="cosine"), "attention_loss must be one of"),
        (dict(loss_weights={"hidden": 1.0}, hidden_layer_map=[[0, 0], [3, 2]]), r"hidden_layer_map: \[3, 2\] is not"),
        (dict(loss_weights={"attention": 1.0}, attention_layer_map=[[2, 0]]), r"attention_layer_map: \[2, 0\] is not"),
    ],
)
def test_bad_distillation_settings_name_the_key(model, message, tiny_bert_dir, tiny_bert_with_head_dir, corpus_path, valid_corpus_path):
    from allennlp.data import Vocabulary

    config = distilled_config(tiny_bert_dir, tiny_bert_with_head_dir, corpus_path, valid_corpus_path, **model)
    vocab = Vocabulary.from_params(Params(config["vocabulary"]))
    with pytest.raises(ConfigurationError, match=message):
        Model.from_params(vocab=vocab, params=Params(config["model"]))


def test_a_teacher_without_an_mlm_head_is_refused(tiny_bert_dir, corpus_path, valid_corpus_path):
    from allennlp.data import Vocabulary

    config = distilled_config(tiny_bert_dir, tiny_bert_dir, corpus_path, valid_corpus_path)
    vocab = Vocabulary.from_params(Params(config["vocabulary"]))
    with pytest.raises(ConfigurationError, match="teacher: .* has no masked-LM head"):
        Model.from_params(vocab=vocab, params=Params(config["model"]))


@pytest.mark.parametrize("missing", ["runs/teacher/model.tar.gz", "{tmp}/teacher.tar.gz", "./teacher"])
def test_a_missing_teacher_file_is_named(missing, tiny_bert_dir, corpus_path, valid_corpus_path, tmp_path):
    # not taken for a hub name (transformers would answer "Incorrect path_or_model_id")
    from allennlp.data import Vocabulary

    missing = missing.format(tmp=tmp_path)
    config = distilled_config(tiny_bert_dir, missing, corpus_path, valid_corpus_path)
    vocab = Vocabulary.from_params(Params(config["vocabulary"]))
    with pytest.raises(ConfigurationError, match=f"teacher: {re.escape(missing)} does not exist; .*teacher_minilm_mlm"):
        Model.from_params(vocab=vocab, params=Params(config["model"]))


def test_default_layer_map_is_uniform():
    assert default_layer_map(2, 2) == [(0, 0), (1, 1), (2, 2)]
    assert default_layer_map(2, 4) == [(0, 0), (1, 2), (2, 4)]


def test_an_archive_teacher_is_loaded_and_frozen(tiny_bert_dir, tiny_bert_with_head_dir, corpus_path, valid_corpus_path, tmp_path):
    from allennlp.commands.train import train_model
    from allennlp.data import Vocabulary

    teacher_config = tiny_masked_lm_config(tiny_bert_with_head_dir, corpus_path, valid_corpus_path, binarize=False)
    teacher_config["trainer"]["num_epochs"] = 1
    train_model(Params(teacher_config), serialization_dir=str(tmp_path / "teacher"))
    config = distilled_config(tiny_bert_dir, tmp_path / "teacher" / "model.tar.gz", corpus_path, valid_corpus_path)
    vocab = Vocabulary.from_params(Params(config["vocabulary"]))
    model = Model.from_params(vocab=vocab, params=Params(config["model"]))
    assert isinstance(model, DistilledMaskedLanguageModel)
    assert not model.teacher.training and not any(p.requires_grad for p in model.teacher.parameters())
