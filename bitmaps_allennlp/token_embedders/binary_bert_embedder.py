import logging
from typing import Any, Dict, List, Optional

import torch
from transformers import AutoConfig, BertConfig, BertForMaskedLM, BertModel

from allennlp.common.checks import ConfigurationError
from allennlp.modules.token_embedders.token_embedder import TokenEmbedder

from bitmaps_allennlp.modules.bert_binarization import (
    ALL_COMPONENTS,
    binarize_bert_encoder,
    check_components,
)
from bitmaps_allennlp.modules.weight_scale import check_weight_scale

logger = logging.getLogger(__name__)


@TokenEmbedder.register("bitmaps_binary_bert")
class BinaryBertEmbedder(TokenEmbedder):
    """
    A BERT encoder whose chosen linears are binarized (`BinaryLinear`: alpha * sign(W) with latent
    full-precision weights). Built from a Hugging Face BERT checkpoint (a local directory or a hub
    name) or from a plain `BertConfig` (random initialisation, for tests). Converting a
    pretrained checkpoint needs no data: the latent weights start as the pretrained ones.
    With `binarize = False` it is the full-precision encoder, which is how teachers are built.

    Use it with the `pretrained_transformer` token indexer; the output is the last layer's hidden
    states, shape `(batch_size, num_wordpieces, hidden_size)`.

    # Parameters

    model_name : `str`, optional (default = `None`)
        A Hugging Face BERT checkpoint: local directory or hub name. Exactly one of `model_name`
        and `bert_config` must be given.
    bert_config : `Dict[str, Any]`, optional (default = `None`)
        Keyword arguments of `transformers.BertConfig` for a randomly initialised encoder.
    binarize : `bool`, optional (default = `True`)
    binarized_components : `List[str]`, optional (default = all six)
        Which linears of every layer to binarize: any of `query`, `key`, `value`,
        `attention_output`, `ffn_in`, `ffn_out`.
    weight_scale : `str`, optional (default = `"mean_abs"`)
        `"mean_abs"` (XNOR-Net/BWN analytic per-channel scale) or `"learned"`.
    load_weights : `bool`, optional (default = `True`)
        Whether to load the checkpoint's weights. `bitmaps_masked_lm` turns this off when it is
        restored from an archive, whose own weights replace them anyway.
    train_parameters : `bool`, optional (default = `True`)
        If `False`, the encoder's parameters are frozen.
    eval_mode : `bool`, optional (default = `False`)
        If `True`, the encoder stays in evaluation mode (no dropout) even while training.
    """

    def __init__(
        self,
        model_name: Optional[str] = None,
        bert_config: Optional[Dict[str, Any]] = None,
        binarize: bool = True,
        binarized_components: List[str] = ALL_COMPONENTS,
        weight_scale: str = "mean_abs",
        load_weights: bool = True,
        train_parameters: bool = True,
        eval_mode: bool = False,
    ) -> None:
        super().__init__()
        if (model_name is None) == (bert_config is None):
            raise ConfigurationError(
                "bitmaps_binary_bert: give exactly one of `model_name` (a BERT checkpoint "
                "directory or hub name) and `bert_config` (BertConfig keyword arguments)"
            )
        check_components(binarized_components)
        check_weight_scale(weight_scale)
        self.model_name = model_name
        # Tensors of the checkpoint's own MLM head, when it has one; a plain dict so they are
        # not part of this module's state (the masked-LM model copies them into its head).
        self.pretrained_head_state: Optional[Dict[str, torch.Tensor]] = None
        self.bert = self._build_encoder(model_name, bert_config, load_weights)
        self.binarized = binarize
        self.binarized_components = list(binarized_components) if binarize else []
        if binarize:
            count = binarize_bert_encoder(self.bert, binarized_components, weight_scale)
            logger.info("bitmaps_binary_bert: binarized %d linears (%s)", count, binarized_components)
        self.train_parameters = train_parameters
        if not train_parameters:
            for parameter in self.bert.parameters():
                parameter.requires_grad = False
        self.eval_mode = eval_mode
        if eval_mode:
            self.bert.eval()

    def _build_encoder(
        self, model_name: Optional[str], bert_config: Optional[Dict[str, Any]], load_weights: bool
    ) -> BertModel:
        if bert_config is not None:
            return BertModel(BertConfig(**bert_config), add_pooling_layer=False)
        config = AutoConfig.from_pretrained(model_name)
        if config.model_type != "bert":
            raise ConfigurationError(
                f"bitmaps_binary_bert: {model_name!r} is a {config.model_type!r} checkpoint; "
                "only BERT-architecture encoders are supported"
            )
        if not load_weights:
            return BertModel(config, add_pooling_layer=False)
        masked_lm, info = BertForMaskedLM.from_pretrained(model_name, output_loading_info=True)
        head_missing = [k for k in info["missing_keys"] if k.startswith("cls.predictions")]
        if head_missing:
            logger.info("%s has no masked-LM head; a new one will be trained", model_name)
        else:
            self.pretrained_head_state = {
                k: v.detach().clone() for k, v in masked_lm.cls.predictions.state_dict().items()
            }
        return masked_lm.bert

    @property
    def config(self) -> BertConfig:
        return self.bert.config

    @property
    def word_embeddings(self) -> torch.Tensor:
        return self.bert.embeddings.word_embeddings.weight

    def get_output_dim(self) -> int:
        return self.bert.config.hidden_size

    def train(self, mode: bool = True) -> "BinaryBertEmbedder":
        super().train(mode)
        if self.eval_mode:
            self.bert.eval()
        return self

    def forward(
        self,
        token_ids: torch.LongTensor,
        mask: torch.BoolTensor,
        type_ids: Optional[torch.LongTensor] = None,
        segment_concat_mask: Optional[torch.BoolTensor] = None,
    ) -> torch.Tensor:
        if segment_concat_mask is not None:
            raise ConfigurationError(
                "bitmaps_binary_bert does not fold long inputs: remove `max_length` from the "
                "pretrained_transformer indexer and keep inputs within the encoder's positions"
            )
        outputs = self.bert(input_ids=token_ids, attention_mask=mask, token_type_ids=type_ids)
        return outputs.last_hidden_state
