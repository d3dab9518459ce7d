"""
bitmaps_runtime: packed 1-bit BERT inference without torch.

- `native`: the C++ core (`_native`: kernels on every instruction-set path, the encoder forward)
  and the choice of kernel path (`BITMAPS_KERNELS`).
- `file_format`, `formats`: the packed model file and the facts of its schemes and tables.
- `encoder.PackedEncoder`: a packed file's masked LM on the C++ core (numpy in, numpy out).
- `archive`: packed archives written by `allennlp bitmaps-export` (safe extraction, tokenizer).
- `predict`: the `bitmaps-predict` command.
"""
__version__ = "0.1.0"
