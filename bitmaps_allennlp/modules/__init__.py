from bitmaps_allennlp.modules.sign_ste import binary_sign, sign_ste
from bitmaps_allennlp.modules.weight_scale import mean_abs_scale
from bitmaps_allennlp.modules.binary_linear import BinaryLinear
from bitmaps_allennlp.modules.bert_binarization import (
    ALL_COMPONENTS,
    BERT_LAYER_COMPONENTS,
    binarize_bert_encoder,
)
from bitmaps_allennlp.modules.masked_lm_head import MaskedLmHead
