import json

from allennlp.common.util import JsonDict
from allennlp.data import DatasetReader, Instance
from allennlp.models import Model
from allennlp.predictors.predictor import Predictor


@Predictor.register("bitmaps_masked_lm")
class MaskedLmPredictor(Predictor):
    """
    Fills masks: `{"sentence": "the capital of france is [MASK] ."}` ->
    `{"predictions": [{"tokens": [...], "probabilities": [...]}], ...}`, one entry per `[MASK]`,
    best candidates first.

    # Parameters

    model : `Model`
    dataset_reader : `DatasetReader`
    frozen : `bool`, optional (default = `True`)
    """

    def __init__(self, model: Model, dataset_reader: DatasetReader, frozen: bool = True) -> None:
        super().__init__(model, dataset_reader, frozen)
        self._records_read = 0

    def predict(self, sentence: str) -> JsonDict:
        return self.predict_json({"sentence": sentence})

    def load_line(self, line: str) -> JsonDict:
        """One record of `allennlp predict`'s input file, checked as it is read, so that a bad one
        is named by its place in the file (AllenNLP skips blank lines without passing them here,
        so the count is of non-blank lines)."""
        self._records_read += 1
        where = f"input line {self._records_read} (blank lines not counted)"
        try:
            json_dict = json.loads(line.rstrip("\r\n"))
        except json.JSONDecodeError as error:
            raise ValueError(
                f"bitmaps_masked_lm predictor: {where} is not JSON ({error.msg}, column {error.colno}): "
                f"{line.strip()[:80]!r}"
            ) from None
        _sentence_of(json_dict, where)
        return json_dict

    def _json_to_instance(self, json_dict: JsonDict) -> Instance:
        return self._dataset_reader.text_to_instance(sentence=_sentence_of(json_dict, "each input"))


def _sentence_of(json_dict: JsonDict, where: str) -> str:
    sentence = json_dict.get("sentence") if isinstance(json_dict, dict) else None
    if not isinstance(sentence, str):
        raise ValueError(
            f'bitmaps_masked_lm predictor: {where} must be a JSON object with a string field "sentence", '
            f"got {json_dict!r}"
        )
    return sentence
