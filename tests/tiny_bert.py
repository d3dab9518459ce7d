"""Tiny BERT checkpoints written at test time: a WordPiece vocab covering the fixture corpora,
and randomly initialised weights from a `BertConfig`, so the suite needs no downloads."""
import string
from pathlib import Path
from typing import Dict, Optional

from transformers import BertConfig, BertForMaskedLM, BertModel, BertTokenizerFast

FIXTURES = Path(__file__).parent / "fixtures"
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

TINY_BERT_CONFIG: Dict = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=64,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)


def tiny_vocab() -> list:
    words = set()
    for corpus in FIXTURES.glob("*.txt"):
        words.update(corpus.read_text().lower().replace("<unk>", " ").split())
    words.update(["capital", "france", "paris", "is", "of"])
    pieces = sorted(words) + list(string.ascii_lowercase) + [f"##{c}" for c in string.ascii_lowercase]
    pieces += list(string.digits) + [f"##{d}" for d in string.digits] + list(string.punctuation)
    seen, vocab = set(), []
    for piece in SPECIAL_TOKENS + pieces:
        if piece not in seen:
            seen.add(piece)
            vocab.append(piece)
    return vocab


def tiny_bert_config(vocab_size: int) -> BertConfig:
    return BertConfig(vocab_size=vocab_size, **TINY_BERT_CONFIG)


def write_tiny_bert(directory: Path, with_mlm_head: bool = False, seed: Optional[int] = 0) -> Path:
    """A checkpoint directory (config, weights, vocab) that `from_pretrained` and
    `AutoTokenizer` load offline."""
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    vocab = tiny_vocab()
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    # saved as `transformers` saves real checkpoints (special tokens as AddedToken entries, as in
    # all-MiniLM-L6-v2), which is what exposed AllenNLP's non-string OOV token under DDP
    BertTokenizerFast(vocab_file=str(directory / "vocab.txt"), do_lower_case=True).save_pretrained(directory)
    if seed is not None:
        torch.manual_seed(seed)
    config = tiny_bert_config(len(vocab))
    model = BertForMaskedLM(config) if with_mlm_head else BertModel(config)
    model.save_pretrained(directory)
    return directory
