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
"""
import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence, TextIO

import numpy as np

from bitmaps_runtime.archive import ArchiveError, PackedArchive, load_packed_archive
from bitmaps_runtime.atomic import atomic_file
from bitmaps_runtime.encoder import PackedEncoder, RuntimeUnavailable, default_threads
from bitmaps_runtime.file_format import PackedFormatError
from bitmaps_runtime.native import backend

MASK_TOKEN = "[MASK]"
UNK_TOKEN = "[UNK]"


class InputError(ValueError):
    """A sentence the model cannot take (the message names it)."""


class Predictor:
    """
    Fill-mask, hidden states and sentence embeddings of a packed archive.

    # Parameters

    archive : `PackedArchive`
    threads : `int`, optional (default = all CPUs this process may use, or `BITMAPS_THREADS`)
    """

    def __init__(self, archive: PackedArchive, threads: Optional[int] = None) -> None:
        self.archive = archive
        self.encoder = PackedEncoder(archive.packed, source=archive.path)
        self.threads = threads or default_threads()
        self.mask_id = archive.tokenizer.token_to_id(MASK_TOKEN)

    def _encode(self, sentences: Sequence[str]):
        tokenizer, rows = self.archive.tokenizer, []
        for sentence in sentences:
            if self.archive.unknown_word:
                sentence = sentence.replace(self.archive.unknown_word, UNK_TOKEN)
            encoding = tokenizer.encode(sentence)
            if len(encoding.ids) > self.archive.max_length:
                raise InputError(
                    f"sentence has {len(encoding.ids)} wordpieces, more than max_length={self.archive.max_length}: {sentence[:60]!r}"
                )
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
        encodings, ids, mask = self._encode(sentences)
        masked = (ids == self.mask_id) & (mask != 0)
        for sentence, row in zip(sentences, masked):
            if not row.any():
                raise InputError(f"sentence has no {MASK_TOKEN} token to fill: {sentence!r}")
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
        encodings, ids, mask = self._encode(sentences)
        hidden = self.encoder.hidden_states(ids, mask, threads=self.threads, skip_padding=True)
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / weights.sum(axis=1)
        return [{"sentence": s, "embedding": pooled[i].tolist()} for i, s in enumerate(sentences)]


def _sentences(args) -> Iterator[str]:
    yield from args.sentences
    if args.input:
        handle = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")
        with handle:
            for number, line in enumerate(handle, 1):
                line = line.strip()
                if not line:
                    continue
                if line.startswith("{"):  # JSON lines as `allennlp predict` takes them
                    try:
                        line = json.loads(line)["sentence"]
                    except (ValueError, KeyError, TypeError):
                        line = None
                    if not isinstance(line, str):
                        raise InputError(f"{args.input}:{number}: expected a JSON object with a string field \"sentence\"")
                yield line


def _batches(items: Iterable[str], size: int) -> Iterator[List[str]]:
    batch: List[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


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
    # intermixed: options may come between the archive and the sentences (`ARCHIVE --embeddings "a b"`)
    args = parser.parse_intermixed_args(argv)
    if not args.sentences and not args.input:
        parser.error("give sentences or --input FILE")
    if args.batch_size < 1 or (args.top_k is not None and args.top_k < 1) or (args.threads is not None and args.threads < 1):
        parser.error("--batch-size, --top-k and --threads must be positive")
    try:
        predictor = Predictor(load_packed_archive(args.archive), threads=args.threads)
        with _output(args.output) as out:
            for batch in _batches(_sentences(args), args.batch_size):
                if args.embeddings:
                    results = predictor.embeddings(batch)
                elif args.hidden_states:
                    results = predictor.hidden_states(batch)
                else:
                    results = predictor.fill_masks(batch, args.top_k)
                for result in results:
                    out.write(json.dumps(result) + "\n")
    except (ArchiveError, PackedFormatError, RuntimeUnavailable, InputError, OSError) as error:
        print(f"bitmaps-predict: {error}", file=sys.stderr)
        return 2
    print(f"bitmaps-predict: kernel path {backend()}, {predictor.threads} threads", file=sys.stderr)
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
