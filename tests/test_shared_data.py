"""Checks against the real corpora and encoder in ../shared/data; skipped where it is absent."""
import numpy as np
import pytest

from tests.conftest import SHARED_DATA

MINILM = SHARED_DATA / "models" / "all-MiniLM-L6-v2"
PTB_VALID = SHARED_DATA / "ptb" / "valid.txt"

pytestmark = pytest.mark.skipif(
    not (MINILM.is_dir() and PTB_VALID.is_file()), reason="../shared/data is not present"
)


def test_ptb_unknown_words_map_to_one_unk_each():
    from bitmaps_allennlp.dataset_readers.masked_lm_corpus import MaskedLmCorpusReader

    reader = MaskedLmCorpusReader(model_name=str(MINILM), deterministic_masking=True)
    unk = reader._tokenizer.unk_token_id
    targets = np.concatenate([i["target_ids"].tensor.numpy() for i in reader.read(PTB_VALID)])
    # PROVENANCE.md: PTB valid has 3,485 `<unk>`; each must be exactly one [UNK] wordpiece
    assert (targets == unk).sum() == 3485
    pieces = set(reader._tokenizer.convert_ids_to_tokens(targets[:5000].tolist()))
    assert "##k" not in pieces


def test_minilm_has_no_mlm_head_and_binarizes():
    from bitmaps_allennlp.modules.quantized_linear import QuantizedLinear
    from bitmaps_allennlp.token_embedders.binary_bert_embedder import BinaryBertEmbedder

    embedder = BinaryBertEmbedder(model_name=str(MINILM))
    assert embedder.pretrained_head_state is None
    assert sum(isinstance(m, QuantizedLinear) for m in embedder.modules()) == 6 * 6
