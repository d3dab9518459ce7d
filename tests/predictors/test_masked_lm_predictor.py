import pytest

from allennlp.common import Params
from allennlp.data import Vocabulary
from allennlp.models import Model
from allennlp.predictors import Predictor

from bitmaps_allennlp.dataset_readers.masked_lm_corpus import MaskedLmCorpusReader
from bitmaps_allennlp.predictors.masked_lm import MaskedLmPredictor
from tests.model_configs import tiny_masked_lm_config


@pytest.fixture
def predictor(tiny_bert_dir, corpus_path, valid_corpus_path):
    config = tiny_masked_lm_config(tiny_bert_dir, corpus_path, valid_corpus_path)
    vocab = Vocabulary.from_params(Params(config["vocabulary"]))
    model = Model.from_params(vocab=vocab, params=Params(config["model"]))
    reader = MaskedLmCorpusReader(model_name=str(tiny_bert_dir), max_length=16)
    return MaskedLmPredictor(model, reader)


def test_every_mask_gets_top_k_tokens_with_probabilities(predictor):
    output = predictor.predict_json({"sentence": "the [MASK] of france is [MASK] ."})
    assert len(output["predictions"]) == 2
    vocab = set(predictor._model.vocab.get_token_to_index_vocabulary("tags"))
    for mask in output["predictions"]:
        assert len(mask["tokens"]) == 5 and set(mask["tokens"]) <= vocab
        probabilities = mask["probabilities"]
        assert probabilities == sorted(probabilities, reverse=True)
        assert 0 < sum(probabilities) <= 1.0 + 1e-6
    batch = predictor.predict_batch_json(
        [{"sentence": "the [MASK] of france is [MASK] ."}, {"sentence": "the city [MASK] ."}]
    )
    for alone, batched in zip(output["predictions"], batch[0]["predictions"]):
        assert batched["tokens"] == alone["tokens"]
        assert batched["probabilities"] == pytest.approx(alone["probabilities"], rel=1e-5)
    assert len(batch[1]["predictions"]) == 1


def test_default_predictor_is_registered():
    assert Predictor.by_name("bitmaps_masked_lm") is MaskedLmPredictor


@pytest.mark.parametrize(
    "bad, message",
    [({"text": "the [MASK] ."}, 'field "sentence"'), ({"sentence": "no mask here ."}, "no \\[MASK\\]")],
)
def test_bad_input_is_explained(predictor, bad, message):
    with pytest.raises(ValueError, match=message):
        predictor.predict_json(bad)


def test_a_bad_record_of_an_input_file_is_named_by_its_place(predictor):
    assert predictor.load_line('{"sentence": "the [MASK] ."}\n') == {"sentence": "the [MASK] ."}
    with pytest.raises(ValueError, match=r"input line 2 \(blank lines not counted\) is not JSON \(Expecting ',' delimiter, column 26\)"):
        predictor.load_line('{"sentence": "a [MASK] ."\n')
    with pytest.raises(ValueError, match=r'input line 3 .* string field "sentence", got \{\'text\': \'x\'\}'):
        predictor.load_line('{"text": "x"}\n')
