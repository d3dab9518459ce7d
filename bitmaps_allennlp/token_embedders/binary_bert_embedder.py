import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch
from transformers import AutoConfig, BertConfig, BertForMaskedLM, BertModel

from allennlp.common.checks import ConfigurationError
from allennlp.modules.token_embedders.token_embedder import TokenEmbedder

from bitmaps_allennlp.common.checkpoints import check_checkpoint
from bitmaps_allennlp.modules.bert_binarization import binarize_bert_encoder, install_attention
from bitmaps_allennlp.modules.binarization_spec import HEAD_COMPONENT, LINEAR_COMPONENTS, BinarizationSpec
from bitmaps_allennlp.modules.component_quantization import ComponentQuantization
from bitmaps_allennlp.modules.counter_dropout import CounterDropout
from bitmaps_allennlp.modules.quantized_embedding import QuantizedEmbedding
from bitmaps_allennlp.modules.quantized_self_attention import AttentionRecord

logger = logging.getLogger(__name__)


@dataclass
class EncoderInternals:
    """`hidden_states`: the embeddings' output and every layer's, `(batch, length, hidden)`
    each; `attention`: one `AttentionRecord` per layer when recorded, else empty."""

    hidden_states: Tuple[torch.Tensor, ...]
    attention: List[AttentionRecord]


def _use_counter_dropout(layer: torch.nn.Module) -> None:
    # Inductor's CPU dropout draws one Philox number per element outside its vector loops
    # (about a quarter of a compiled MiniLM distillation step); CounterDropout's masks vectorise.
    for parent in list(layer.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Dropout:
                setattr(parent, name, CounterDropout.like(child))


@TokenEmbedder.register("bitmaps_binary_bert")
class BinaryBertEmbedder(TokenEmbedder):
    """
    A BERT encoder whose chosen components are binarized, with the per-component knobs of the
    binarization literature (XNOR-Net/BWN, BiBERT, BiT, BitNet b1.58), each a config away. Built
    from a Hugging Face BERT checkpoint (a local directory or a hub name) or from a plain
    `BertConfig` (random initialisation, for tests). Converting a pretrained checkpoint needs no
    data: the latent weights start as the pretrained ones. With `binarize = False` it is the
    full-precision encoder, which is how teachers are built.

    Use it with the `pretrained_transformer` token indexer; the output is the last layer's hidden
    states, shape `(batch_size, num_wordpieces, hidden_size)`.

    # Parameters

    model_name : `str`, optional (default = `None`)
        A Hugging Face BERT checkpoint: local directory or hub name. Exactly one of `model_name`
        and `bert_config` must be given.
    bert_config : `Dict[str, Any]`, optional (default = `None`)
        Keyword arguments of `transformers.BertConfig` for a randomly initialised encoder.
    binarize : `bool`, optional (default = `True`)
    binarized_components : `List[str]`, optional (default = the six linears)
        Which components to quantize: any of the linears of every layer `query`, `key`, `value`,
        `attention_output`, `ffn_in`, `ffn_out`, the embedding tables `word_embeddings` and
        `position_embeddings` (the tied MLM decoder then uses the quantized word table), and
        `mlm_head` (the head's dense transform).
    weights : `str`, optional (default = `"binary"`)
        `"binary"` (alpha * sign) or `"ternary"` (BitNet b1.58 absmean); for the embedding tables
        also `"int8"` (absmax per row, in `component_overrides`), which exports exactly.
    weight_scale : `str`, optional (default = `"mean_abs"`)
        `"mean_abs"` (XNOR-Net/BWN analytic per-channel scale), `"per_tensor"` or `"learned"`.
    center_weights : `bool`, optional (default = `False`)
        Subtract each row's mean before the sign (BiBERT/BiT).
    estimator : `str`, optional (default = `"clipped"`)
        The sign's straight-through estimator: `"clipped"`, `"tanh"` or `"approx_sign"`.
    activations : `str`, optional (default = `"real"`)
        Quantizer of the inputs of every binarized linear: `"real"`, `"int8"` (absmax per token),
        `"sign"`, `"elastic"` (BiT, learned scale and threshold) or `"two_set"` ({0, alpha}, for
        non-negative inputs such as post-GELU values).
    component_overrides : `Dict[str, Dict[str, Any]]`, optional (default = `None`)
        Per-component values of the five knobs above, e.g. `{"ffn_out": {"activations": "two_set"}}`.
    attention : `str`, optional (default = `"softmax"`)
        `"softmax"` or BiBERT's `"bi_attention"`.
    attention_activations : `str`, optional (default = `"real"`)
        Quantizer of Q, K and V in the attention matmuls (`"real"`, `"int8"`, `"sign"`, `"elastic"`).
    attention_probs : `str`, optional (default = `"real"`)
        Quantizer of the softmax output: `"real"`, `"int8"` or `"two_set"` (BiT).
    num_hidden_layers : `int`, optional (default = `None`, all of them)
        Keep only the checkpoint's first `num_hidden_layers` layers: a shallower student (the
        dense baseline of the same teacher, `training_configs/dense_small_distill.jsonnet`).
    load_weights : `bool`, optional (default = `True`)
        Whether to load the checkpoint's weights. `bitmaps_masked_lm` turns this off when it is
        restored from an archive, whose own weights replace them anyway.
    train_parameters : `bool`, optional (default = `True`)
        If `False`, the encoder's parameters are frozen.
    eval_mode : `bool`, optional (default = `False`)
        If `True`, the encoder stays in evaluation mode (no dropout) even while training.
    compile_layers : `bool`, optional (default = `False`)
        `torch.compile` every encoder layer and the embedding tables' quantizers for training:
        the quantizers' elementwise work and dropout fuse into generated C++ loops (README, "Training throughput", for what it gains).
        The layers' dropouts are `CounterDropout`s (the same keep probability and scaling, with
        masks that vectorise in those loops; inductor's own CPU dropout does not).
        The first training steps pay the compilation (about a minute for MiniLM on 2 cores, and
        again after `--recover`), which needs a C++ compiler. Evaluation, prediction and export
        stay eager: a model that has not trained in this process is never compiled. Same
        parameters and state dict either way.
    """

    def __init__(
        self,
        model_name: Optional[str] = None,
        bert_config: Optional[Dict[str, Any]] = None,
        binarize: bool = True,
        binarized_components: List[str] = LINEAR_COMPONENTS,
        weights: str = "binary",
        weight_scale: str = "mean_abs",
        center_weights: bool = False,
        estimator: str = "clipped",
        activations: str = "real",
        component_overrides: Optional[Dict[str, Dict[str, Any]]] = None,
        attention: str = "softmax",
        attention_activations: str = "real",
        attention_probs: str = "real",
        num_hidden_layers: Optional[int] = None,
        load_weights: bool = True,
        train_parameters: bool = True,
        eval_mode: bool = False,
        compile_layers: bool = False,
    ) -> None:
        super().__init__()
        if (model_name is None) == (bert_config is None):
            raise ConfigurationError(
                "bitmaps_binary_bert: give exactly one of `model_name` (a BERT checkpoint "
                "directory or hub name) and `bert_config` (BertConfig keyword arguments)"
            )
        # checked before any weight is loaded, so a bad knob fails fast and names its key
        spec = BinarizationSpec.from_options(
            binarized_components,
            ComponentQuantization(weights, weight_scale, center_weights, estimator, activations),
            component_overrides,
            attention,
            attention_activations,
            attention_probs,
        )
        self.model_name = model_name
        # Tensors of the checkpoint's own MLM head, when it has one; a plain dict so they are
        # not part of this module's state (the masked-LM model copies them into its head).
        self.pretrained_head_state: Optional[Dict[str, torch.Tensor]] = None
        if num_hidden_layers is not None and (model_name is None or num_hidden_layers < 1):
            raise ConfigurationError(
                f"num_hidden_layers must be a positive number of a checkpoint's layers (with model_name), got {num_hidden_layers}"
            )
        self.bert = self._build_encoder(model_name, bert_config, load_weights, num_hidden_layers)
        self.binarized = binarize
        self.spec = spec if binarize else BinarizationSpec()
        self.binarized_components = list(binarized_components) if binarize else []
        if binarize:
            count = binarize_bert_encoder(self.bert, spec)
            logger.info("bitmaps_binary_bert: quantized %d modules (%s)", count, binarized_components)
        else:
            install_attention(self.bert)
        self.train_parameters = train_parameters
        if not train_parameters:
            for parameter in self.bert.parameters():
                parameter.requires_grad = False
        self.eval_mode = eval_mode
        if eval_mode:
            self.bert.eval()
        self.compile_layers = compile_layers
        self._layers_compiled = False
        self._frozen_layers_compiled = False
        if compile_layers:
            # now, not at the first step: callbacks that hook modules before training (AllenNLP's
            # confidence checks) must see the modules that will run
            for layer in self.bert.encoder.layer:
                _use_counter_dropout(layer)

    def _build_encoder(
        self, model_name: Optional[str], bert_config: Optional[Dict[str, Any]], load_weights: bool,
        num_hidden_layers: Optional[int],
    ) -> BertModel:
        if bert_config is not None:
            return BertModel(BertConfig(**bert_config), add_pooling_layer=False)
        check_checkpoint(model_name, "bitmaps_binary_bert: model_name")
        config = AutoConfig.from_pretrained(model_name)
        if num_hidden_layers is not None:
            if num_hidden_layers > config.num_hidden_layers:
                raise ConfigurationError(
                    f"num_hidden_layers: {model_name!r} has {config.num_hidden_layers} layers, fewer than {num_hidden_layers}"
                )
            config.num_hidden_layers = num_hidden_layers
        if config.model_type != "bert":
            raise ConfigurationError(
                f"bitmaps_binary_bert: {model_name!r} is a {config.model_type!r} checkpoint; "
                "only BERT-architecture encoders are supported"
            )
        if not load_weights:
            return BertModel(config, add_pooling_layer=False)
        masked_lm, info = BertForMaskedLM.from_pretrained(model_name, config=config, output_loading_info=True)
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
        """The word table as the forward pass uses it (quantized when it is binarized)."""
        table = self.bert.embeddings.word_embeddings
        return table.quantized_weight() if isinstance(table, QuantizedEmbedding) else table.weight

    @contextlib.contextmanager
    def tables_quantized_once(self) -> Iterator[None]:
        """A block (one forward pass) in which each quantized embedding table is quantized once,
        however many times it is read (`QuantizedEmbedding.quantized_once`)."""
        with contextlib.ExitStack() as stack:
            for module in self.bert.embeddings.modules():
                if isinstance(module, QuantizedEmbedding):
                    stack.enter_context(module.quantized_once())
            yield

    @property
    def head_quantization(self) -> Optional[ComponentQuantization]:
        """How the masked-LM head's dense transform is quantized, if it is."""
        return self.spec.components.get(HEAD_COMPONENT)

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
        with self._compilation():
            outputs = self.bert(input_ids=token_ids, attention_mask=mask, token_type_ids=type_ids)
        return outputs.last_hidden_state

    def _compilation(self):
        """Compiled layers run compiled only while training: evaluation batches have other
        shapes and would only pay for more compilations. The layers are compiled at the first
        training step, not at construction, so that a model loaded only to evaluate, predict or
        export never holds dynamo-wrapped modules (tracing, as the ONNX export does, refuses
        them)."""
        if not self.compile_layers or self._frozen_layers_compiled:
            return contextlib.nullcontext()
        if not self.training:
            return torch.compiler.set_stance("force_eager")
        if not self._layers_compiled:
            for layer in self.bert.encoder.layer:
                layer.compile()  # in place: the state dict keeps its keys
            for module in self.bert.embeddings.modules():
                if isinstance(module, QuantizedEmbedding):
                    # eager, int8 rows of MiniLM's 30522 x 384 word table take five passes
                    module.weight_quantizer.compile()
            self._layers_compiled = True
        for module in self.bert.encoder.modules():
            if isinstance(module, CounterDropout):
                module.reseed()  # outside the compiled graphs (see CounterDropout)
        return contextlib.nullcontext()

    def compile_frozen_layers(self) -> None:
        """`torch.compile` every layer of a frozen encoder that only runs forward, in evaluation
        mode and without gradients: a distillation teacher, which runs once every training step.
        Its GELU, LayerNorm and residual adds then fuse into generated loops. Unlike
        `compile_layers`, the layers run compiled outside training too."""
        if any(p.requires_grad for p in self.parameters()):
            raise ConfigurationError("compile_frozen_layers: the encoder has trainable parameters; freeze it first")
        for layer in self.bert.encoder.layer:
            layer.compile()
        self._frozen_layers_compiled = True

    def encode_with_internals(
        self,
        token_ids: torch.LongTensor,
        mask: torch.BoolTensor,
        type_ids: Optional[torch.LongTensor] = None,
        record_attention: bool = False,
    ) -> EncoderInternals:
        """Every layer's hidden states and, if asked, every layer's attention internals: what the
        distillation losses compare."""
        attentions = [layer.attention.self for layer in self.bert.encoder.layer]
        for attention in attentions:
            attention.record = record_attention
        try:
            with self._compilation():
                outputs = self.bert(
                    input_ids=token_ids, attention_mask=mask, token_type_ids=type_ids, output_hidden_states=True
                )
            records = [attention.last_record for attention in attentions] if record_attention else []
        finally:
            for attention in attentions:
                attention.record = False
                attention.last_record = None
        return EncoderInternals(tuple(outputs.hidden_states), records)
