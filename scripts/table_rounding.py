#!/usr/bin/env python
"""
What each int8 embedding-table format's rounding does to a trained archive's word and position
tables, without running the model: the squared error per row, averaged over rows and weighted by
how often each wordpiece occurs in a corpus. The tied MLM decoder adds each row's error to that
row's logit for every prediction, and a prediction's perplexity suffers from the candidates it
gives probability to, which are mostly the frequent wordpieces: the weighted figure is the one
the decoder feels. `int8_col` is also measured at other column exponents (`--exponents`) than
its fixed one, to show the choice. Writes the figures as JSON.

    python scripts/table_rounding.py runs/recipes_full/bit_stage1/model.tar.gz \
        ../shared/data/wikitext-2/train.txt --json results/table_rounding.json
"""
import argparse
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from atomic_json import write_json  # noqa: E402

TABLES = ("embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight")


def _archive_tables_and_frequencies(archive: Path, corpus: Path):
    """The trained word and position tables, and each wordpiece's frequency in `corpus` as the
    archive's own reader tokenizes it."""
    import torch
    from allennlp.models.archival import load_archive

    import bitmaps_allennlp  # noqa: F401  (registers the model types)

    loaded = load_archive(str(archive))
    state = loaded.model.state_dict()
    tables = {}
    for suffix in TABLES:
        keys = [k for k in state if k.endswith(suffix)]
        if not keys:
            sys.exit(f"{archive}: the model has no *{suffix} (a trained model archive, not a packed one, is expected)")
        tables[suffix.split(".")[1]] = state[keys[0]].detach().float()
    rows = tables["word_embeddings"].shape[0]
    ids = torch.tensor(list(loaded.validation_dataset_reader.wordpiece_ids(str(corpus))), dtype=torch.long)
    counts = torch.bincount(ids, minlength=rows)[:rows].float()
    return tables, counts / counts.sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archive", type=Path, help="a trained model.tar.gz")
    parser.add_argument("corpus", type=Path, help="text whose wordpiece frequencies weight the word table's rows")
    parser.add_argument("--exponents", type=float, nargs="*", default=[0.25, 0.75, 1.0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    for path in (args.archive, args.corpus):
        if not path.is_file():
            sys.exit(f"{path}: no such file")
    import torch

    from bitmaps_allennlp.packed.schemes import TABLE_FORMATS, TABLE_COLUMN_EXPONENT

    tables, frequency = _archive_tables_and_frequencies(args.archive, args.corpus)

    def unpacked(name, table, pack):
        stored = {k: torch.from_numpy(v) for k, v in pack(table).items()}
        return TABLE_FORMATS[name].unpack(stored, table.shape[1])

    variants = {name: (name, TABLE_FORMATS[name].pack) for name in ("int8", "int8_g64", "int8_col")}
    for exponent in args.exponents:
        if exponent != TABLE_COLUMN_EXPONENT:
            variants[f"int8_col, exponent {exponent:g}"] = ("int8_col", lambda t, e=exponent: TABLE_FORMATS["int8_col"].pack(t, e))
    word = tables["word_embeddings"]
    peak_ratio = word.abs().amax(dim=1) / word.pow(2).mean(dim=1).sqrt().clamp_min(1e-30)
    frequent = frequency.topk(8).indices.tolist()
    column_peaks = word.abs().amax(dim=0)
    shape = {
        "absmax_over_rms_median_row": peak_ratio.median().item(),
        "absmax_over_rms_frequent_rows": {str(i): round(peak_ratio[i].item(), 2) for i in frequent},
        "largest_columns": column_peaks.topk(5).indices.tolist(),
        "largest_column_max_over_median_column_max": (column_peaks.max() / column_peaks.median()).item(),
    }
    print(f"word table rows: absmax / rms {shape['absmax_over_rms_median_row']:.2f} for the median row, "
          f"{min(shape['absmax_over_rms_frequent_rows'].values())}-{max(shape['absmax_over_rms_frequent_rows'].values())} "
          f"for the 8 most frequent wordpieces (ids {frequent}); largest columns {shape['largest_columns']}")
    records = []
    print(f"{'format':28} {'word, weighted':>15} {'word, mean':>12} {'position, mean':>15}  (squared error per row)")
    for label, (name, pack) in variants.items():
        record = {"format": label}
        for table_name, table in tables.items():
            error = (unpacked(name, table, pack) - table).pow(2).sum(dim=1)
            record[f"{table_name}_mean"] = error.mean().item()
            if table_name == "word_embeddings":
                record["word_embeddings_weighted"] = (frequency * error).sum().item()
        records.append(record)
        print(f"{label:28} {record['word_embeddings_weighted']:15.3e} {record['word_embeddings_mean']:12.3e} "
              f"{record['position_embeddings_mean']:15.3e}")
    if args.json:
        write_json(args.json, {
            "what": "squared rounding error per table row of each int8 table format (scripts/table_rounding.py); "
                    "word table rows weighted by wordpiece frequency in the corpus",
            "archive": str(args.archive), "corpus": str(args.corpus), "exponent": TABLE_COLUMN_EXPONENT,
            "word_table": shape, "records": records,
        })


if __name__ == "__main__":
    main()
