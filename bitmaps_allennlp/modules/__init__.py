from bitmaps_allennlp.modules.sign_ste import binary_sign, sign_ste
from bitmaps_allennlp.modules.weight_scale import mean_abs_scale
from bitmaps_allennlp.modules.component_quantization import ComponentQuantization
from bitmaps_allennlp.modules.binarization_spec import (
    ALL_COMPONENTS,
    BERT_LAYER_COMPONENTS,
    LINEAR_COMPONENTS,
    BinarizationSpec,
)
from bitmaps_allennlp.modules.quantized_linear import QuantizedLinear
from bitmaps_allennlp.modules.quantized_embedding import QuantizedEmbedding
from bitmaps_allennlp.modules.quantized_self_attention import AttentionRecord, QuantizedSelfAttention
from bitmaps_allennlp.modules.bert_binarization import binarize_bert_encoder, install_attention
from bitmaps_allennlp.modules.masked_lm_head import MaskedLmHead
