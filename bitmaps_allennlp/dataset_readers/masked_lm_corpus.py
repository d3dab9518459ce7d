import itertools
import logging
import os
import random
from typing import Dict, Iterable, Iterator, List, Optional

import numpy as np
import torch

from transformers import AutoConfig

from allennlp.common import cached_transformers
from allennlp.common.checks import ConfigurationError
from allennlp.common.file_utils import cached_path
from allennlp.data.dataset_readers.dataset_reader import DatasetReader
from allennlp.data.fields import TensorField, TextField
from allennlp.data.instance import Instance
from allennlp.data.token_indexers import PretrainedTransformerIndexer, TokenIndexer
from allennlp.data.tokenizers import Token

from bitmaps_allennlp.common.checkpoints import check_checkpoint
from bitmaps_allennlp.dataset_readers.masking import MaskingRule, block_rng

logger = logging.getLogger(__name__)

_TOKENIZE_BATCH_LINES = 2000


@DatasetReader.register("bitmaps_masked_lm_corpus")
class MaskedLmCorpusReader(DatasetReader):
    """
    Reads a language-modelling corpus of plain text lines (WikiText-2/103 tokenized or raw, Penn
    Treebank), wordpiece-tokenises it, packs the whole file into blocks of `max_length`
    wordpieces ([CLS] block [SEP]; line and article boundaries are not kept, as in BERT's
    pre-training) and masks each block with BERT's 80/10/10 rule.

    The corpora's literal unknown-word token (`<unk>`) becomes the tokenizer's unknown token
    (`[UNK]`) instead of the four wordpieces `<`, `un`, `##k`, `>`; unknown tokens are never
    chosen as prediction targets.

    Masking is random (a new draw every time the file is read, so every epoch sees new masks when
    the data loader re-reads it: set `max_instances_in_memory`) unless `deterministic_masking`
    is set, in which case the masks depend only on `seed`, the block's index and its content:
    the same positions in every run, which is what makes an evaluated perplexity reproducible.

    Instances hold `tokens` (wordpieces with their ids), `masked_positions` (bool, which
    positions to predict) and `target_ids` (the original ids). `text_to_instance(sentence)`
    instead builds a prediction instance whose `[MASK]` tokens are the positions to predict.

    # Parameters

    model_name : `str`
        The tokenizer: a Hugging Face checkpoint directory or hub name (BERT WordPiece). A
        relative directory is looked up in the reader's `serialization_dir` first, which is where
        AllenNLP unpacks an archive: exported packed archives carry their tokenizer as
        `tokenizer/`, so they load on machines without the original checkpoint.
    max_length : `int`, optional (default = `128`)
        Wordpieces per block, [CLS] and [SEP] included.
    mask_probability : `float`, optional (default = `0.15`)
    replace_with_mask : `float`, optional (default = `0.8`)
    replace_with_random : `float`, optional (default = `0.1`)
    deterministic_masking : `bool`, optional (default = `False`)
    seed : `int`, optional (default = `13`)
        Seed of the deterministic masks.
    unknown_word : `str`, optional (default = `"<unk>"`)
        The corpus's own unknown-word token; `None` keeps the text as it is.
    truncate : `bool`, optional (default = `False`)
        Prediction only (`text_to_instance`): a sentence longer than `max_length` wordpieces is
        cut to that length by the tokenizer's truncation (the last wordpieces go, [CLS] and [SEP]
        stay), as `bitmaps-predict --truncate` cuts it, where `False` refuses it. A cut that
        would drop a `[MASK]` is refused either way. Corpora are packed into blocks and never cut.
    """

    def __init__(
        self,
        model_name: str,
        max_length: int = 128,
        mask_probability: float = 0.15,
        replace_with_mask: float = 0.8,
        replace_with_random: float = 0.1,
        deterministic_masking: bool = False,
        seed: int = 13,
        unknown_word: Optional[str] = "<unk>",
        truncate: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(
            manual_distributed_sharding=True, manual_multiprocess_sharding=True, **kwargs
        )
        if max_length < 3:
            raise ConfigurationError(f"max_length must be at least 3, got {max_length}")
        if not 0.0 < mask_probability <= 1.0:
            raise ConfigurationError(f"mask_probability must be in (0, 1], got {mask_probability}")
        if replace_with_mask < 0 or replace_with_random < 0 or replace_with_mask + replace_with_random > 1:
            raise ConfigurationError(
                "replace_with_mask and replace_with_random must be non-negative and sum to at "
                f"most 1, got {replace_with_mask} and {replace_with_random}"
            )
        model_name = _inside_serialization_dir(model_name, kwargs.get("serialization_dir"))
        check_checkpoint(model_name, "bitmaps_masked_lm_corpus: model_name")
        self._tokenizer = cached_transformers.get_tokenizer(model_name)
        for name in ("cls_token_id", "sep_token_id", "mask_token_id", "unk_token_id"):
            if getattr(self._tokenizer, name) is None:
                raise ConfigurationError(f"tokenizer of {model_name!r} has no {name[:-3]}")
        _check_against_encoder(model_name, max_length, len(self._tokenizer))
        self._token_indexers: Dict[str, TokenIndexer] = {
            "tokens": PretrainedTransformerIndexer(model_name, namespace="tags")
        }
        self.max_length = max_length
        self.deterministic_masking = deterministic_masking
        self.seed = seed
        self.unknown_word = unknown_word
        self.truncate = truncate
        special = set(self._tokenizer.all_special_ids)
        self._masking = MaskingRule(
            mask_token_id=self._tokenizer.mask_token_id,
            random_token_ids=np.array(
                [i for i in range(len(self._tokenizer)) if i not in special], dtype=np.int64
            ),
            mask_probability=mask_probability,
            replace_with_mask=replace_with_mask,
            replace_with_random=replace_with_random,
        )

    def _read(self, file_path: str) -> Iterable[Instance]:
        blocks = self._blocks(self.wordpiece_ids(file_path))
        # checked before sharding, so every distributed worker and data-loader process agrees:
        # an empty file would otherwise train for 0 steps or evaluate to a perplexity of NaN
        first = next(blocks, None)
        if first is None:
            raise ConfigurationError(
                f"bitmaps_masked_lm_corpus: {file_path} holds no text (it is empty or every line is blank)"
            )
        for block_index, content_ids in self.shard_iterable(enumerate(itertools.chain([first], blocks))):
            yield self._block_to_instance(block_index, content_ids)

    def wordpiece_ids(self, file_path: str) -> Iterator[int]:
        """The corpus's wordpiece ids, in order, as this reader reads them (blank lines skipped,
        the corpus's unknown word mapped to the tokenizer's), before blocking and masking."""
        local_path = cached_path(file_path)
        if not os.path.isfile(local_path):
            raise ConfigurationError(f"bitmaps_masked_lm_corpus: no such data file: {file_path}")
        batch: List[str] = []
        for line in _text_lines(local_path, file_path):
            line = line.strip()
            if not line:
                continue
            if self.unknown_word is not None:
                line = line.replace(self.unknown_word, self._tokenizer.unk_token)
            batch.append(line)
            if len(batch) == _TOKENIZE_BATCH_LINES:
                yield from self._tokenize_lines(batch)
                batch = []
        yield from self._tokenize_lines(batch)

    def _tokenize_lines(self, lines: List[str]) -> Iterator[int]:
        if not lines:
            return
        # verbose=False: long lines trip the tokenizer's "longer than the maximum" warning, which
        # does not apply here since the ids are packed into blocks of max_length afterwards
        for ids in self._tokenizer(lines, add_special_tokens=False, verbose=False)["input_ids"]:
            yield from ids

    def _blocks(self, ids: Iterator[int]) -> Iterator[List[int]]:
        block_size = self.max_length - 2
        block: List[int] = []
        for token_id in ids:
            block.append(token_id)
            if len(block) == block_size:
                yield block
                block = []
        if block:
            yield block

    def _block_to_instance(self, block_index: int, content_ids: List[int]) -> Instance:
        tokenizer = self._tokenizer
        token_ids = np.array(
            [tokenizer.cls_token_id, *content_ids, tokenizer.sep_token_id], dtype=np.int64
        )
        maskable = np.ones(len(token_ids), dtype=bool)
        maskable[[0, -1]] = False
        maskable &= token_ids != tokenizer.unk_token_id
        if self.deterministic_masking:
            rng = block_rng(self.seed, block_index, content_ids)
        else:
            rng = np.random.default_rng(random.getrandbits(64))
        masked = self._masking.apply(token_ids, maskable, rng)
        return self._make_instance(masked.input_ids, masked.masked_positions, token_ids)

    def text_to_instance(  # type: ignore[override]
        self, sentence: str, target_ids: Optional[List[int]] = None
    ) -> Instance:
        """A prediction instance: every `[MASK]` in `sentence` is a position to predict.
        `target_ids`, when given, are the true ids of all wordpieces ([CLS] and [SEP] included)."""
        if self.unknown_word is not None:
            sentence = sentence.replace(self.unknown_word, self._tokenizer.unk_token)
        token_ids = np.array(self._tokenizer(sentence)["input_ids"], dtype=np.int64)
        targets = None if target_ids is None else np.asarray(target_ids, dtype=np.int64)
        if targets is not None and len(targets) != len(token_ids):
            raise ValueError(
                f"target_ids has {len(targets)} ids but the sentence has {len(token_ids)} wordpieces"
            )
        if len(token_ids) > self.max_length:
            if not self.truncate:
                raise ValueError(
                    f"sentence has {len(token_ids)} wordpieces, more than max_length={self.max_length} "
                    f"(the reader's truncate cuts it): {sentence[:60]!r}"
                )
            cut = self._tokenizer(sentence, truncation=True, max_length=self.max_length)["input_ids"]
            mask_id = self._tokenizer.mask_token_id
            if cut.count(mask_id) < int((token_ids == mask_id).sum()):
                raise ValueError(
                    f"sentence has a {self._tokenizer.mask_token} past max_length={self.max_length} "
                    f"wordpieces, which truncate would cut: {sentence[:60]!r}"
                )
            if targets is not None:  # the same cut: the first wordpieces, then [SEP]'s
                targets = np.concatenate([targets[: len(cut) - 1], targets[-1:]])
            token_ids = np.array(cut, dtype=np.int64)
        masked_positions = token_ids == self._tokenizer.mask_token_id
        if not masked_positions.any():
            raise ValueError(
                f"sentence has no {self._tokenizer.mask_token} token to fill: {sentence!r}"
            )
        return self._make_instance(token_ids, masked_positions, targets)

    def _make_instance(
        self,
        input_ids: np.ndarray,
        masked_positions: np.ndarray,
        target_ids: Optional[np.ndarray],
    ) -> Instance:
        pieces = self._tokenizer.convert_ids_to_tokens(input_ids.tolist())
        tokens = [
            Token(text=piece, text_id=int(i), type_id=0) for piece, i in zip(pieces, input_ids)
        ]
        fields = {
            "tokens": TextField(tokens),
            "masked_positions": TensorField(
                torch.from_numpy(masked_positions), padding_value=False, dtype=torch.bool
            ),
        }
        if target_ids is not None:
            fields["target_ids"] = TensorField(torch.from_numpy(target_ids), padding_value=0)
        return Instance(fields)

    def apply_token_indexers(self, instance: Instance) -> None:
        instance.fields["tokens"].token_indexers = self._token_indexers  # type: ignore


def _inside_serialization_dir(model_name: str, serialization_dir: Optional[str]) -> str:
    if serialization_dir and not os.path.isabs(model_name):
        candidate = os.path.join(serialization_dir, model_name)
        if os.path.isdir(candidate):
            return candidate
    return model_name


def _text_lines(path: str, shown_path: str) -> Iterator[str]:
    """The file's lines as text. Read as bytes and decoded line by line, so that a file that is
    not UTF-8 is reported with its name and the byte offset of the first bad byte (a text-mode
    `open` would raise a `UnicodeDecodeError` naming neither). A leading byte-order mark is
    dropped."""
    offset = 0
    with open(path, "rb") as corpus:
        for number, raw in enumerate(corpus, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ConfigurationError(
                    f"bitmaps_masked_lm_corpus: {shown_path} is not UTF-8 text: byte offset "
                    f"{offset + error.start} (line {number}) holds {raw[error.start:error.start + 1]!r}"
                ) from None
            if number == 1:
                line = line.removeprefix("\ufeff")
            offset += len(raw)
            yield line


def _check_against_encoder(model_name: str, max_length: int, tokenizer_size: int) -> None:
    """Limits of the checkpoint the reader tokenizes for, checked when the config is read rather
    than at the first batch. A tokenizer-only folder (a packed archive's `tokenizer/`) has no
    encoder config, and its archive's model checks its own limits."""
    try:
        config = AutoConfig.from_pretrained(model_name)
    except (OSError, ValueError):
        return
    positions = getattr(config, "max_position_embeddings", None)
    if positions is not None and max_length > positions:
        raise ConfigurationError(
            f"bitmaps_masked_lm_corpus: max_length = {max_length} is longer than the encoder's "
            f"max_position_embeddings = {positions} ({model_name}); set max_length to at most {positions}"
        )
    vocab_size = getattr(config, "vocab_size", None)
    if vocab_size is not None and tokenizer_size > vocab_size:
        raise ConfigurationError(
            f"bitmaps_masked_lm_corpus: the tokenizer of model_name = {model_name} has {tokenizer_size} "
            f"wordpieces but the encoder's vocab_size is {vocab_size}: ids past it have no embedding"
        )
