import logging
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from allennlp.common.checks import ConfigurationError
from allennlp.common.params import Params
from allennlp.data import TextFieldTensors, Vocabulary
from allennlp.models.model import Model
from allennlp.modules import TextFieldEmbedder
from allennlp.nn import InitializerApplicator
from allennlp.training.metrics import Average

from bitmaps_allennlp.models.masked_lm import BinaryMaskedLanguageModel
from bitmaps_allennlp.models.teacher import load_teacher
from bitmaps_allennlp.modules import distillation_losses as losses

logger = logging.getLogger(__name__)

LOSS_NAMES: Tuple[str, ...] = ("mlm", "soft_ce", "hidden", "attention", "direction")
ATTENTION_LOSSES: Tuple[str, ...] = ("mse", "kl")


def default_layer_map(student_layers: int, teacher_layers: int) -> List[Tuple[int, int]]:
    """Student index i -> teacher index round(i * T / S) (the uniform map of TinyBERT), for
    indices 0..S inclusive (hidden states, where 0 is the embeddings) or exclusive (layers)."""
    return [(i, round(i * teacher_layers / student_layers)) for i in range(student_layers + 1)]


@Model.register("bitmaps_distilled_masked_lm")
class DistilledMaskedLanguageModel(BinaryMaskedLanguageModel):
    """
    A `bitmaps_masked_lm` student trained against a frozen full-precision teacher. The training
    loss is a weighted sum of the terms in `loss_weights`, each also reported as a metric
    `loss_<name>` during training:

    - `mlm`: cross-entropy against the true wordpieces at masked positions;
    - `soft_ce`: cross-entropy against the teacher's MLM distribution at masked positions, with
      `temperature`;
    - `hidden`: MSE of hidden states (embeddings output and every layer) under `hidden_layer_map`;
    - `attention`: attention loss under `attention_layer_map`, `attention_loss` = `mse` of
      pre-softmax scores (TinyBERT) or `kl` of attention distributions (MiniLM);
    - `direction`: BiBERT's direction matching of Q, K and V (normalised Gram matrices) under
      `attention_layer_map`.

    The teacher is never updated and is not part of the model's parameters: the trained archive
    holds the student only, and restoring it never loads the teacher. Outside training (validation,
    evaluation, prediction) the model is exactly its student: loss = MLM loss.

    When the student's embedder has `compile_layers`, the teacher's layers and the loss terms run
    compiled as well (`compile_frozen_layers`, `distillation_losses.compiled`); the results are
    those of the eager functions, to float rounding.

    # Parameters

    vocab : `Vocabulary`
    text_field_embedder : `TextFieldEmbedder`
        As for `bitmaps_masked_lm`: one `bitmaps_binary_bert`, the student.
    teacher : `str`, optional (default = `None`)
        A trained `bitmaps_masked_lm` archive or a Hugging Face BERT checkpoint with an MLM head.
        Without a teacher only the `mlm` term can be used.
    loss_weights : `Dict[str, float]`, optional (default = `{"mlm": 1.0, "soft_ce": 1.0}`)
        Weights of the terms above; a term with weight 0 (or absent) is not computed.
    temperature : `float`, optional (default = `1.0`)
    hidden_layer_map : `List[Tuple[int, int]]`, optional (default = uniform)
        (student, teacher) pairs of hidden-state indices, 0 being the embeddings' output.
    attention_layer_map : `List[Tuple[int, int]]`, optional (default = uniform)
        (student, teacher) pairs of layer indices, from 0.
    attention_loss : `str`, optional (default = `"mse"`)
    target_namespace : `str`, optional (default = `"tags"`)
    top_k : `int`, optional (default = `5`)
    initializer : `InitializerApplicator`, optional
        E.g. `pretrained` to start from the teacher's or an earlier stage's weights.
    """

    def __init__(
        self,
        vocab: Vocabulary,
        text_field_embedder: TextFieldEmbedder,
        teacher: Optional[str] = None,
        loss_weights: Optional[Dict[str, float]] = None,
        temperature: float = 1.0,
        hidden_layer_map: Optional[List[Tuple[int, int]]] = None,
        attention_layer_map: Optional[List[Tuple[int, int]]] = None,
        attention_loss: str = "mse",
        target_namespace: str = "tags",
        top_k: int = 5,
        initializer: InitializerApplicator = InitializerApplicator(),
        **kwargs,
    ) -> None:
        super().__init__(
            vocab, text_field_embedder, target_namespace=target_namespace, top_k=top_k, initializer=initializer, **kwargs
        )
        loss_weights = dict(loss_weights if loss_weights is not None else {"mlm": 1.0, "soft_ce": 1.0})
        for name, weight in loss_weights.items():
            if name not in LOSS_NAMES:
                raise ConfigurationError(f"loss_weights.{name}: unknown loss; expected some of {list(LOSS_NAMES)}")
            if weight < 0:
                raise ConfigurationError(f"loss_weights.{name} must be >= 0, got {weight}")
        self._loss_weights = {name: float(w) for name, w in loss_weights.items() if w > 0}
        if not self._loss_weights:
            raise ConfigurationError("loss_weights: every weight is 0; nothing would be trained")
        if attention_loss not in ATTENTION_LOSSES:
            raise ConfigurationError(f"attention_loss must be one of {list(ATTENTION_LOSSES)}, got {attention_loss!r}")
        if temperature <= 0:
            raise ConfigurationError(f"temperature must be > 0, got {temperature}")
        self._temperature = temperature
        self._attention_loss = attention_loss
        self._loss_metrics = {name: Average() for name in self._loss_weights}
        needs_teacher = sorted(set(self._loss_weights) - {"mlm"})
        if teacher is None and needs_teacher:
            # an archive restored for evaluation or prediction: the teacher is not needed
            logger.info("no teacher: the distillation terms %s are not computed", needs_teacher)
        # not a registered submodule: the teacher is neither trained, nor saved, nor moved by the
        # trainer (forward moves it next to the student)
        self.__dict__["_teacher"] = None
        self._hidden_layer_map: List[Tuple[int, int]] = []
        self._attention_layer_map: List[Tuple[int, int]] = []
        if teacher is not None and needs_teacher:
            self.__dict__["_teacher"] = load_teacher(teacher, vocab, target_namespace)
            if self._encoder.compile_layers:
                # the student trains compiled: its teacher's forward, once a step, runs compiled too
                self._teacher._encoder.compile_frozen_layers()
            self._check_teacher(needs_teacher)
            self._hidden_layer_map = self._layer_map(hidden_layer_map, "hidden_layer_map", hidden_states=True)
            self._attention_layer_map = self._layer_map(attention_layer_map, "attention_layer_map", hidden_states=False)

    @property
    def teacher(self) -> Optional[BinaryMaskedLanguageModel]:
        return self._teacher

    def _check_teacher(self, terms: Sequence[str]) -> None:
        student, teacher = self._encoder.config, self._teacher._encoder.config
        if student.vocab_size != teacher.vocab_size:
            raise ConfigurationError(
                f"teacher: its vocabulary has {teacher.vocab_size} wordpieces, the student's {student.vocab_size}"
            )
        if "hidden" in terms and student.hidden_size != teacher.hidden_size:
            raise ConfigurationError(
                f"loss_weights.hidden: hidden sizes differ (student {student.hidden_size}, teacher {teacher.hidden_size})"
            )
        if {"attention", "direction"} & set(terms) and student.num_attention_heads != teacher.num_attention_heads:
            raise ConfigurationError(
                "loss_weights.attention/direction: attention heads differ "
                f"(student {student.num_attention_heads}, teacher {teacher.num_attention_heads})"
            )

    def _layer_map(self, pairs: Optional[List[Tuple[int, int]]], key: str, hidden_states: bool) -> List[Tuple[int, int]]:
        student = self._encoder.config.num_hidden_layers
        teacher = self._teacher._encoder.config.num_hidden_layers
        if pairs is None:
            pairs = default_layer_map(student, teacher)
            if not hidden_states:
                pairs = [(s, min(t, teacher - 1)) for s, t in pairs[:-1]]
        limit_s, limit_t = (student + 1, teacher + 1) if hidden_states else (student, teacher)
        checked = []
        for pair in pairs:
            if len(pair) != 2 or not (0 <= pair[0] < limit_s and 0 <= pair[1] < limit_t):
                raise ConfigurationError(
                    f"{key}: {list(pair)} is not a (student, teacher) pair of indices in "
                    f"[0, {limit_s}) x [0, {limit_t})"
                )
            checked.append((int(pair[0]), int(pair[1])))
        if not checked:
            raise ConfigurationError(f"{key}: empty; give at least one (student, teacher) pair or leave it out")
        return checked

    def forward(  # type: ignore[override]
        self,
        tokens: TextFieldTensors,
        masked_positions: torch.BoolTensor,
        target_ids: Optional[torch.LongTensor] = None,
    ) -> Dict[str, torch.Tensor]:
        if not self.training or self._teacher is None:
            return super().forward(tokens, masked_positions, target_ids)
        masked_positions = masked_positions.bool()
        inputs = tokens["tokens"]
        token_ids, mask, type_ids = inputs["token_ids"], inputs["mask"], inputs.get("type_ids")
        record = bool({"attention", "direction"} & set(self._loss_weights))
        student, logits = self._student_outputs(token_ids, mask, type_ids, masked_positions, record)
        teacher = self._teacher_outputs(token_ids, mask, type_ids, masked_positions, record)
        terms = self._loss_terms(student, logits, teacher, mask, masked_positions, target_ids)
        loss = sum(self._loss_weights[name] * value for name, value in terms.items())
        for name, value in terms.items():
            self._loss_metrics[name](value.detach())
        return {"loss": loss}

    def _student_outputs(self, token_ids, mask, type_ids, masked_positions, record):
        with self._encoder.tables_quantized_once():  # the lookup and the tied decoder share them
            internals = self._encoder.encode_with_internals(token_ids, mask, type_ids, record_attention=record)
            logits = self._head(internals.hidden_states[-1][masked_positions], self.word_embeddings)
        return internals, logits

    def _teacher_outputs(self, token_ids, mask, type_ids, masked_positions, record):
        teacher = self._teacher
        device = token_ids.device
        if next(teacher.parameters()).device != device:
            teacher.to(device)
        teacher.eval()
        with torch.no_grad():
            internals = teacher._encoder.encode_with_internals(token_ids, mask, type_ids, record_attention=record)
            logits = None
            if "soft_ce" in self._loss_weights:
                logits = teacher._head(internals.hidden_states[-1][masked_positions], teacher.word_embeddings)
        return internals, logits

    def _loss_terms(self, student, logits, teacher, mask, masked_positions, target_ids) -> Dict[str, torch.Tensor]:
        teacher_internals, teacher_logits = teacher
        terms: Dict[str, torch.Tensor] = {}
        if target_ids is not None:
            targets = target_ids[masked_positions]
            soft_ce, scores = None, None
            if "soft_ce" in self._loss_weights:
                # one pass set over the logits for both losses and the metrics
                scores_of = self._loss_function(losses.masked_lm_scores)
                soft_ce, *scores = scores_of(logits, teacher_logits, targets, self._temperature)
            # computed for the metrics even when the MLM term has no weight
            mlm = self._masked_lm_loss(logits, targets, scores)
            if "mlm" in self._loss_weights:
                terms["mlm"] = mlm
            if soft_ce is not None:
                terms["soft_ce"] = soft_ce
        elif "soft_ce" in self._loss_weights:
            terms["soft_ce"] = losses.soft_cross_entropy(logits, teacher_logits, self._temperature)
        if "hidden" in self._loss_weights:
            hidden_mse = self._loss_function(losses.hidden_mse)
            terms["hidden"] = _mean(
                hidden_mse(student.hidden_states[s], teacher_internals.hidden_states[t], mask)
                for s, t in self._hidden_layer_map
            )
        if "attention" in self._loss_weights:
            if self._attention_loss == "mse":
                pairs = ((student.attention[s].scores, teacher_internals.attention[t].scores) for s, t in self._attention_layer_map)
                attention_loss = self._loss_function(losses.attention_score_mse)
            else:
                pairs = ((student.attention[s].probs, teacher_internals.attention[t].probs) for s, t in self._attention_layer_map)
                attention_loss = self._loss_function(losses.attention_kl)
            terms["attention"] = _mean(attention_loss(a, b, mask) for a, b in pairs)
        if "direction" in self._loss_weights:
            direction_matching = self._loss_function(losses.direction_matching)
            terms["direction"] = _mean(
                direction_matching(getattr(student.attention[s], part), getattr(teacher_internals.attention[t], part), mask)
                for s, t in self._attention_layer_map
                for part in ("query", "key", "value")
            )
        return terms

    def _loss_function(self, loss: Callable[..., Any]) -> Callable[..., Any]:
        """The student trains compiled (`compile_layers`): so do its losses, which are elementwise
        passes over every layer's outputs and over the logits."""
        return losses.compiled(loss) if self._encoder.compile_layers else loss

    def get_metrics(self, reset: bool = False) -> Dict[str, float]:
        metrics = super().get_metrics(reset)
        for name, metric in self._loss_metrics.items():
            if metric._count:
                metrics[f"loss_{name}"] = metric.get_metric(reset)
        return metrics

    @classmethod
    def _load(cls, config: Params, serialization_dir, weights_file=None, cuda_device: int = -1):
        # The archive holds the student only; evaluating or predicting needs no teacher.
        config.get("model")["teacher"] = None
        return super()._load(config, serialization_dir, weights_file, cuda_device)


def _mean(values) -> torch.Tensor:
    values = list(values)
    return torch.stack(values).mean()
