from allennlp.common.util import JsonDict
from allennlp.data import Instance
from allennlp.predictors.predictor import Predictor


@Predictor.register("bitmaps_masked_lm")
class MaskedLmPredictor(Predictor):
    """
    Fills masks: `{"sentence": "the capital of france is [MASK] ."}` ->
    `{"predictions": [{"tokens": [...], "probabilities": [...]}], ...}`, one entry per `[MASK]`,
    best candidates first.
    """

    def predict(self, sentence: str) -> JsonDict:
        return self.predict_json({"sentence": sentence})

    def _json_to_instance(self, json_dict: JsonDict) -> Instance:
        sentence = json_dict.get("sentence") if isinstance(json_dict, dict) else None
        if not isinstance(sentence, str):
            raise ValueError(
                'bitmaps_masked_lm predictor: each input must be a JSON object with a string '
                f'field "sentence", got {json_dict!r}'
            )
        return self._dataset_reader.text_to_instance(sentence=sentence)
