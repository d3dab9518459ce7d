"""
`bitmaps-predict ARCHIVE SENTENCE...`: a packed archive written by `allennlp bitmaps-export`, run
by the C++ core with numpy and `tokenizers` only (no torch, no AllenNLP).

    bitmaps-predict packed.tar.gz "the capital of france is [MASK] ."
    bitmaps-predict packed.tar.gz --input sentences.txt --embeddings > vectors.jsonl

Prints one JSON line per sentence: for every [MASK], the top-k wordpieces and their probabilities
(`{"sentence", "predictions": [{"tokens", "probabilities"}]}`, as `allennlp predict` writes them);
with `--embeddings`, the mean of the last hidden states over the sentence's wordpieces ([CLS] and
[SEP] included, as sentence-transformers pools); with `--hidden-states`, every wordpiece's. A
batch's padding is left out of the encoder (`PackedEncoder.hidden_states(skip_padding=True)`), so
sentences of mixed lengths in one batch cost what their own wordpieces cost.

A sentence longer than the archive's max_length wordpieces is an error, unless `--truncate` cuts
it to that length (its last wordpieces dropped, [SEP] kept, as sentence-transformers truncates);
a cut that would drop a [MASK] is an error still. Errors name the sentence's place (`FILE:LINE`
or `sentence N` of the arguments). A long `--input` reports its progress on stderr.
"""
import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence, TextIO, Tuple

import numpy as np
from tokenizers import Tokenizer

from bitmaps_runtime.archive import ArchiveError, PackedArchive, load_packed_archive
from bitmaps_runtime.atomic import atomic_file
from bitmaps_runtime.encoder import PackedEncoder, RuntimeUnavailable, default_threads
from bitmaps_runtime.file_format import PackedFormatError
from bitmaps_runtime.native import SettingError, backend

MASK_TOKEN = "[MASK]"
UNK_TOKEN = "[UNK]"
# seconds between two progress lines on stderr (the first after as long): short runs print none
PROGRESS_SECONDS = 10.0


class InputError(ValueError):
    """A sentence the model cannot take (the message names it). `index`: its place in the batch
    the Predictor was given, where one sentence is at fault, so that the command can name its
    line."""

    def __init__(self, message: str, index: Optional[int] = None) -> None:
        super().__init__(message)
        self.index = index


class Predictor:
    """
    Fill-mask, hidden states and sentence embeddings of a packed archive.

    # Parameters

    archive : `PackedArchive`
    threads : `int`, optional (default = all CPUs this process may use, or `BITMAPS_THREADS`)
    truncate : `bool`, optional (default = the archive reader's `truncate`, else `False`)
        Cut a sentence longer than the archive's `max_length` wordpieces to that length (the
        tokenizer's truncation: the last wordpieces go, [CLS] and [SEP] stay, as the reader's
        `truncate` cuts it for `allennlp predict`), where `False` refuses it. A cut that would
        drop a [MASK] to fill is refused either way. `truncated` counts the sentences cut.
    """

    def __init__(self, archive: PackedArchive, threads: Optional[int] = None, truncate: Optional[bool] = None) -> None:
        self.archive = archive
        self.encoder = PackedEncoder(archive.packed, source=archive.path)
        self.threads = threads or default_threads()
        self.mask_id = archive.tokenizer.token_to_id(MASK_TOKEN)
        self.truncated = 0
        self._tokenizer = archive.tokenizer
        if archive.truncate if truncate is None else truncate:
            # a copy: the archive's tokenizer stays as loaded (no truncation) for other users
            self._tokenizer = Tokenizer.from_str(archive.tokenizer.to_str())
            self._tokenizer.enable_truncation(archive.max_length)

    def _encode(self, sentences: Sequence[str], keep_masks: bool = False):
        rows, limit = [], self.archive.max_length
        for index, sentence in enumerate(sentences):
            if self.archive.unknown_word:
                sentence = sentence.replace(self.archive.unknown_word, UNK_TOKEN)
            encoding = self._tokenizer.encode(sentence)
            if len(encoding.ids) > limit:
                raise InputError(
                    f"{sentence[:60]!r} has {len(encoding.ids)} wordpieces, more than max_length={limit} (--truncate cuts it)",
                    index,
                )
            if encoding.overflowing:
                if keep_masks and any(self.mask_id in piece.ids for piece in encoding.overflowing):
                    raise InputError(f"{sentence[:60]!r} has a {MASK_TOKEN} past max_length={limit} wordpieces, which --truncate would cut", index)
                self.truncated += 1
            rows.append(encoding)
        length = max(len(e.ids) for e in rows)
        ids = np.zeros((len(rows), length), dtype=np.int64)
        mask = np.zeros((len(rows), length), dtype=np.int32)
        for i, encoding in enumerate(rows):
            ids[i, : len(encoding.ids)] = encoding.ids
            mask[i, : len(encoding.ids)] = 1
        return rows, ids, mask

    def fill_masks(self, sentences: Sequence[str], top_k: Optional[int] = None) -> List[dict]:
        top_k = top_k or self.archive.top_k
        encodings, ids, mask = self._encode(sentences, keep_masks=True)
        masked = (ids == self.mask_id) & (mask != 0)
        for index, (sentence, row) in enumerate(zip(sentences, masked)):
            if not row.any():
                raise InputError(f"{sentence[:60]!r} has no {MASK_TOKEN} token to fill", index)
        hidden = self.encoder.hidden_states(ids, mask, threads=self.threads, skip_padding=True)
        logits = self.encoder.logits(hidden[masked], threads=self.threads)
        # as the AllenNLP model: probabilities of the top k under the softmax over the vocabulary
        top = np.argsort(-logits, axis=-1, kind="stable")[:, :top_k]
        shifted = logits - logits.max(axis=-1, keepdims=True)
        log_norm = np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        probs = np.exp(np.take_along_axis(shifted, top, axis=-1) - log_norm)
        results, flat = [], 0
        for sentence, row in zip(sentences, masked):
            predictions = []
            for _ in range(int(row.sum())):
                predictions.append(
                    {
                        "tokens": [self.archive.tokenizer.id_to_token(int(i)) for i in top[flat]],
                        "probabilities": [float(p) for p in probs[flat]],
                    }
                )
                flat += 1
            results.append({"sentence": sentence, "predictions": predictions})
        return results

    def hidden_states(self, sentences: Sequence[str]) -> List[dict]:
        encodings, ids, mask = self._encode(sentences)
        hidden = self.encoder.hidden_states(ids, mask, threads=self.threads, skip_padding=True)
        return [
            {"sentence": s, "tokens": e.tokens, "hidden_states": hidden[i, : len(e.ids)].tolist()}
            for i, (s, e) in enumerate(zip(sentences, encodings))
        ]

    def embeddings(self, sentences: Sequence[str]) -> List[dict]:
        pooled = self._pooled(sentences)
        return [{"sentence": s, "embedding": pooled[i].tolist()} for i, s in enumerate(sentences)]

    def encode(self, sentences: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """
        Sentence embeddings as an array for applications (sentence-transformers' `encode`):
        float32, `(len(sentences), hidden_size)`, row i the mean of sentence i's last hidden
        states over its wordpieces, what `--embeddings` prints. Runs `batch_size` sentences at a
        time, so that a long list needs one batch's activations at once.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        parts = [np.zeros((0, self.encoder.hidden_size), dtype=np.float32)]
        for start in range(0, len(sentences), batch_size):
            try:
                parts.append(self._pooled(sentences[start : start + batch_size]))
            except InputError as error:  # its place in the whole list
                raise InputError(str(error), None if error.index is None else start + error.index) from None
        return np.concatenate(parts)

    def _pooled(self, sentences: Sequence[str]) -> np.ndarray:
        encodings, ids, mask = self._encode(sentences)
        hidden = self.encoder.hidden_states(ids, mask, threads=self.threads, skip_padding=True)
        weights = mask[..., None].astype(np.float32)
        return (hidden * weights).sum(axis=1) / weights.sum(axis=1)

    @classmethod
    def from_path(cls, path: str, threads: Optional[int] = None, truncate: Optional[bool] = None) -> "Predictor":
        """The Predictor of the packed archive at `path` (`load_packed_archive`)."""
        return cls(load_packed_archive(path), threads=threads, truncate=truncate)


def _sentences(args) -> Iterator[Tuple[str, str]]:
    """(where, sentence) pairs: the arguments' (`sentence N`), then --input's (`FILE:LINE`)."""
    for number, sentence in enumerate(args.sentences, 1):
        yield f"sentence {number}", sentence
    if args.input:
        name = "stdin" if args.input == "-" else args.input
        try:
            # bytes, decoded a line at a time, so that a bad byte is reported on its own line
            handle = sys.stdin.buffer if args.input == "-" else open(args.input, "rb")
        except OSError as error:
            raise InputError(f"--input {args.input}: {(error.strerror or str(error)).lower()}") from None
        with contextlib.nullcontext(handle) if args.input == "-" else handle:
            for number, raw in enumerate(handle, 1):
                try:
                    line = raw.decode("utf-8-sig" if number == 1 else "utf-8").strip()
                except UnicodeDecodeError:
                    raise InputError(f"{name}:{number}: not UTF-8 text") from None
                if not line:
                    continue
                if line.startswith("{"):  # JSON lines as `allennlp predict` takes them
                    try:
                        line = json.loads(line)["sentence"]
                    except (ValueError, KeyError, TypeError):
                        line = None
                    if not isinstance(line, str):
                        raise InputError(f"{name}:{number}: expected a JSON object with a string field \"sentence\"")
                yield f"{name}:{number}", line


def _batches(items: Iterable, size: int) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class _Progress:
    """A line on stderr every PROGRESS_SECONDS: sentences done and their rate."""

    def __init__(self) -> None:
        self.start = self.last = time.monotonic()
        self.done = 0

    def add(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self.last >= PROGRESS_SECONDS:
            self.last = now
            print(f"bitmaps-predict: {self.done:,} sentences, {self.done / (now - self.start):,.0f} a second", file=sys.stderr, flush=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bitmaps-predict", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archive", help="a packed archive written by `allennlp bitmaps-export`")
    parser.add_argument("sentences", nargs="*", help="sentences (with [MASK] for fill-mask)")
    parser.add_argument("--input", help="a file of sentences, one per line or JSON lines with \"sentence\" ('-': stdin)")
    parser.add_argument("--output", help="write the JSON lines here instead of stdout")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--embeddings", action="store_true", help="mean-pooled sentence embeddings")
    mode.add_argument("--hidden-states", action="store_true", help="every wordpiece's last hidden state")
    parser.add_argument("--top-k", type=int, help="candidates per [MASK] (default: the archive's, 5)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, help="threads of the C++ core (default: all CPUs, or BITMAPS_THREADS)")
    parser.add_argument(
        "--truncate", action="store_true",
        help="cut sentences longer than the archive's max_length wordpieces to that length "
        "(default: refuse them, unless the archive's reader has truncate: true)",
    )
    # intermixed: options may come between the archive and the sentences (`ARCHIVE --embeddings "a b"`)
    args = parser.parse_intermixed_args(argv)
    if not args.sentences and not args.input:
        parser.error("give sentences or --input FILE")
    if args.batch_size < 1 or (args.top_k is not None and args.top_k < 1) or (args.threads is not None and args.threads < 1):
        parser.error("--batch-size, --top-k and --threads must be positive")
    progress = _Progress()
    try:
        predictor = Predictor(load_packed_archive(args.archive), threads=args.threads, truncate=args.truncate or None)
        with _output(args.output) as out:
            for batch in _batches(_sentences(args), args.batch_size):
                sentences = [sentence for _, sentence in batch]
                try:
                    if args.embeddings:
                        results = predictor.embeddings(sentences)
                    elif args.hidden_states:
                        results = predictor.hidden_states(sentences)
                    else:
                        results = predictor.fill_masks(sentences, args.top_k)
                except InputError as error:
                    if error.index is None:
                        raise
                    raise InputError(f"{batch[error.index][0]}: {error}") from None
                for result in results:
                    out.write(json.dumps(result) + "\n")
                progress.add(len(batch))
    except (ArchiveError, PackedFormatError, RuntimeUnavailable, InputError, SettingError, OSError) as error:
        print(f"bitmaps-predict: {error}", file=sys.stderr)
        return 2
    truncated = f", {predictor.truncated:,} truncated to {predictor.archive.max_length} wordpieces" if predictor.truncated else ""
    print(
        f"bitmaps-predict: {progress.done:,} sentence{'' if progress.done == 1 else 's'} in {time.monotonic() - progress.start:.1f} s{truncated}; "
        f"kernel path {backend()}, {predictor.threads} threads",
        file=sys.stderr,
    )
    return 0


@contextlib.contextmanager
def _output(path: Optional[str]) -> Iterator[TextIO]:
    """stdout, or the file at `path` written whole or not at all (`atomic_file`): a bad line late
    in the input, or an interrupt, leaves an earlier file of that name as it was."""
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    if not Path(path).parent.is_dir():
        raise InputError(f"--output {path}: no such folder {str(Path(path).parent)!r}")
    with atomic_file(path, "w", encoding="utf-8") as out:
        yield out


if __name__ == "__main__":
    sys.exit(main())
