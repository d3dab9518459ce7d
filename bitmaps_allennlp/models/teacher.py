"""Loading the frozen full-precision teacher of a distillation run."""
import logging
import os
import tarfile

from allennlp.common.checks import ConfigurationError
from allennlp.data import Vocabulary
from allennlp.models.archival import load_archive
from allennlp.modules.text_field_embedders import BasicTextFieldEmbedder

from bitmaps_allennlp.common.checkpoints import names_a_local_path
from bitmaps_allennlp.models.masked_lm import BinaryMaskedLanguageModel
from bitmaps_allennlp.token_embedders.binary_bert_embedder import BinaryBertEmbedder

logger = logging.getLogger(__name__)


def load_teacher(teacher: str, vocab: Vocabulary, target_namespace: str = "tags") -> BinaryMaskedLanguageModel:
    """
    `teacher` is either a trained `bitmaps_masked_lm` archive (`model.tar.gz`) or a Hugging Face
    BERT checkpoint with a masked-LM head (a local directory or a hub name). The returned model
    is frozen and in evaluation mode.
    """
    if not os.path.exists(teacher) and names_a_local_path(teacher):
        # else transformers takes it for a hub name and says only "Incorrect path_or_model_id"
        raise ConfigurationError(
            f"teacher: {teacher} does not exist; a distillation recipe's teacher is the masked LM "
            "trained by training_configs/teacher_minilm_mlm.jsonnet (allennlp train ... -s runs/teacher), "
            "or BiT stage 1's archive for stage 2: train that first"
        )
    if os.path.isfile(teacher):
        if not tarfile.is_tarfile(teacher):
            raise ConfigurationError(f"teacher: {teacher} is a file but not a model archive (model.tar.gz)")
        model = load_archive(teacher).model
        if not isinstance(model, BinaryMaskedLanguageModel):
            raise ConfigurationError(
                f"teacher: {teacher} holds a {type(model).__name__}; a bitmaps_masked_lm archive is needed"
            )
    else:
        encoder = BinaryBertEmbedder(model_name=teacher, binarize=False)
        if encoder.pretrained_head_state is None:
            raise ConfigurationError(
                f"teacher: {teacher} has no masked-LM head, so it cannot teach masked-LM logits; train one "
                "first (training_configs/teacher_minilm_mlm.jsonnet) and pass its model.tar.gz"
            )
        model = BinaryMaskedLanguageModel(
            vocab, BasicTextFieldEmbedder({"tokens": encoder}), target_namespace=target_namespace
        )
    logger.info("teacher loaded from %s", teacher)
    return model.requires_grad_(False).eval()
