from allennlp.common import cached_transformers
from allennlp.data.vocabulary import Vocabulary

from bitmaps_allennlp.common.checkpoints import check_checkpoint


@Vocabulary.register("bitmaps_wordpiece", constructor="from_tokenizer")
class WordpieceVocabulary(Vocabulary):
    """
    The vocabulary of a masked LM: the tokenizer's wordpieces, in the tokenizer's order, in one
    namespace without padding or OOV entries (so id = wordpiece id), as `from_pretrained_transformer`
    builds it, but with the OOV token recorded as a plain string.

    Why not `from_pretrained_transformer` itself: for tokenizers that keep their special tokens as
    `AddedToken` objects (every checkpoint saved by recent `transformers`, all-MiniLM-L6-v2
    included) it records that object as the OOV token, and AllenNLP's distributed trainer, which
    hands the vocabulary to its workers as `{"type": "from_files", "oov_token": ...}`, then dies in
    every worker with "Expected oov_token to be a string".

    # Parameters

    model_name : `str`
        The tokenizer: a Hugging Face checkpoint directory or hub name.
    namespace : `str`, optional (default = `"tags"`)
        The namespace the masked LM predicts in (its `target_namespace`).
    """

    @classmethod
    def from_tokenizer(cls, model_name: str, namespace: str = "tags") -> "Vocabulary":
        check_checkpoint(model_name, "bitmaps_wordpiece: model_name")
        tokenizer = cached_transformers.get_tokenizer(model_name)
        return Vocabulary.from_pretrained_transformer(model_name, namespace, oov_token=str(tokenizer.unk_token))
