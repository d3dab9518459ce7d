#!/usr/bin/env python
"""
How far a trained model's perplexity moves when only its input embedding tables (word and
position) are rounded, the MLM decoder tied to the word table left in fp32: the question behind
packed parity on W1A1 models, whose first layer binarizes its inputs, so that a rounding of a
table entry can flip a sign the training never saw. Scores one corpus file whole (the archive's
reader and deterministic masks) on the source archive in torch, once per variant:

    fp32                  the trained tables
    int8_word, int8_position, int8_both
                          absmax int8 per row (the packed `int8` table format) on one or both
    int8_mask_row         only the [MASK] row of the word table (every prediction reads it)
    fp16_word, fp16_position
    noiseN                both tables plus uniform noise of the int8 rounding's size (+-step/2 per
                          row), seed N: how far same-sized perturbations spread

    python scripts/table_sensitivity.py runs/long/bit_stage2/model.tar.gz ../shared/data/ptb/test.txt \
        --json results/table_sensitivity.json

Appends one record per (archive, file) to the JSON (a record for the same pair is replaced).
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "benchmarks"))
from atomic_json import write_json  # noqa: E402
from timing import cpu_name  # noqa: E402

VARIANTS = ("fp32", "int8_word", "int8_position", "int8_both", "int8_mask_row", "fp16_word", "fp16_position")


def _variant_tables(name, word, position, mask_id):
    """The (word, position) input tables of one variant, from the trained fp32 ones."""
    import torch

    from bitmaps_allennlp.packed.schemes import TABLE_FORMATS

    def int8(table):
        stored = TABLE_FORMATS["int8"].pack(table)
        return TABLE_FORMATS["int8"].unpack({k: torch.from_numpy(v) for k, v in stored.items()}, table.shape[1])

    word, position = word.clone(), position.clone()
    if name in ("int8_word", "int8_both"):
        word = int8(word)
    if name in ("int8_position", "int8_both"):
        position = int8(position)
    if name == "int8_mask_row":
        word[mask_id] = int8(word[mask_id : mask_id + 1])[0]
    if name == "fp16_word":
        word = word.half().float()
    if name == "fp16_position":
        position = position.half().float()
    if name.startswith("noise"):
        generator = torch.Generator().manual_seed(int(name[len("noise"):]))
        for table in (word, position):
            step = table.abs().amax(dim=1, keepdim=True) / 127
            table.add_((torch.rand(table.shape, generator=generator) - 0.5) * step)
    return word, position


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archive", type=Path, help="a trained bitmaps_masked_lm archive (model.tar.gz)")
    parser.add_argument("data", type=Path, help="a corpus file (scored whole)")
    parser.add_argument("--json", type=Path, default=REPO / "results" / "table_sensitivity.json")
    parser.add_argument("--seeds", type=int, default=4, help="noise variants (default: 4)")
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    for path in (args.archive, args.data):
        if not path.is_file():
            sys.exit(f"{path}: no such file")
    import torch
    import torch.nn.functional as F
    from allennlp.data.data_loaders import SimpleDataLoader
    from allennlp.models.archival import load_archive

    import bitmaps_allennlp  # noqa: F401

    archive = load_archive(str(args.archive), overrides=json.dumps({"validation_dataset_reader.max_instances": None}))
    model = archive.model.eval()
    embeddings = model._encoder.bert.embeddings
    for name in ("word_embeddings", "position_embeddings"):
        if type(getattr(embeddings, name)) is not torch.nn.Embedding:
            sys.exit(f"{args.archive}: {name} was trained quantized; its rounding is part of the model")
    word, position = embeddings.word_embeddings.weight.detach().clone(), embeddings.position_embeddings.weight.detach().clone()
    # the decoder keeps the trained word table in every variant: only the encoder's input moves
    decoder_table = word.clone()
    type(model).word_embeddings = property(lambda self: decoder_table)
    mask_id = model.vocab.get_token_index("[MASK]", model._target_namespace)
    instances = list(archive.validation_dataset_reader.read(str(args.data)))
    variants = list(VARIANTS) + [f"noise{seed}" for seed in range(1, args.seeds + 1)]
    perplexity = {}
    for variant in variants:
        start = time.time()
        tables = _variant_tables(variant, word, position, mask_id)
        with torch.no_grad():
            embeddings.word_embeddings.weight.copy_(tables[0])
            embeddings.position_embeddings.weight.copy_(tables[1])
        nll, count = 0.0, 0
        with torch.inference_mode():
            for batch in SimpleDataLoader(instances, args.batch, vocab=model.vocab):
                masked = batch["masked_positions"].bool()
                logits = model.masked_logits(batch["tokens"], masked)
                nll += F.cross_entropy(logits.double(), batch["target_ids"][masked], reduction="sum").item()
                count += int(masked.sum())
        perplexity[variant] = math.exp(nll / count)
        shift = 100 * (perplexity[variant] / perplexity["fp32"] - 1)
        print(f"{variant:16s} {perplexity[variant]:10.3f}  {shift:+.2f}%  ({time.time() - start:.0f} s)", flush=True)
    noise = [perplexity[v] / perplexity["fp32"] - 1 for v in variants if v.startswith("noise")]
    record = {
        "archive": str(args.archive),
        "data": str(args.data),
        "masked_tokens": count,
        "perplexity": perplexity,
        "noise_shift_percent": {"min": 100 * min(noise), "max": 100 * max(noise)} if noise else None,
        "engine": "torch (the source archive; decoder fp32 in every variant)",
        "machine": cpu_name(),
    }
    previous = json.loads(args.json.read_text()) if args.json.is_file() else {"what": __doc__.strip().split("\n\n")[0], "records": []}
    previous["records"] = [
        r for r in previous["records"] if (r["archive"], r["data"]) != (record["archive"], record["data"])
    ] + [record]
    write_json(args.json, previous)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
