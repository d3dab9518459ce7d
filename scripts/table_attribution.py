#!/usr/bin/env python
"""
Which int8 table moves a packed archive's perplexity: the input tables (word and position
embeddings) or the MLM decoder tied to the word table? For a recipe folder holding two exports of
the same model, `packed.tar.gz` (default int8 tables) and `packed_fp32.tar.gz`
(`--embeddings fp32`), this scores the whole file's deterministic masks four ways on the C++
runtime: int8 tables throughout, fp32 throughout, and each half swapped (the hidden states of one
archive through the other archive's head and decoder). It also lists the target wordpieces whose
total loss grows most from fp32 to int8 tables. Appends one record per (recipe, file) to the JSON.

    python scripts/table_attribution.py runs/recipes_full/xnor_w1 ../shared/data/ptb/test.txt \
        --json results/table_attribution.json
"""
import argparse
import collections
import json
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "benchmarks"))
from atomic_json import write_json  # noqa: E402
from timing import cpu_name  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="folder with packed.tar.gz and packed_fp32.tar.gz")
    parser.add_argument("data", type=Path, help="a corpus file (scored whole)")
    parser.add_argument("--json", type=Path, default=REPO / "results" / "table_attribution.json")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    for name in ("packed.tar.gz", "packed_fp32.tar.gz"):
        if not (args.run / name).is_file():
            sys.exit(f"{args.run / name}: missing (scripts/packed_parity.sh writes both)")
    if not args.data.is_file():
        sys.exit(f"{args.data}: no such file")
    import torch
    import torch.nn.functional as F
    from allennlp.data import Batch
    from allennlp.models.archival import load_archive

    import bitmaps_allennlp  # noqa: F401

    int8, fp32 = (load_archive(str(args.run / name)) for name in ("packed.tar.gz", "packed_fp32.tar.gz"))
    m8, m32 = int8.model.eval(), fp32.model.eval()
    if m8.engine != "runtime" or m32.engine != "runtime":
        sys.exit("the native runtime is not built: this measures its tables")
    reader = int8.validation_dataset_reader
    reader.max_instances = None  # the whole file
    instances = list(reader.read(str(args.data)))
    for instance in instances:
        instance.index_fields(m8.vocab)
    threads = torch.get_num_threads()
    names = ("int8 tables", "fp32 tables", "int8 input tables, fp32 decoder", "fp32 input tables, int8 decoder")
    nll = dict.fromkeys(names, 0.0)
    by_target = collections.defaultdict(lambda: [0, 0.0])
    count = 0
    with torch.inference_mode():
        for start in range(0, len(instances), args.batch):
            tensors = Batch(instances[start:start + args.batch]).as_tensor_dict()
            masked = tensors["masked_positions"].bool()
            targets = tensors["target_ids"][masked]
            h8, h32 = (m.encode(tensors["tokens"])[masked].numpy() for m in (m8, m32))
            logits = dict(zip(names, (m8._runtime.logits(h8, threads=threads), m32._runtime.logits(h32, threads=threads),
                                      m32._runtime.logits(h8, threads=threads), m8._runtime.logits(h32, threads=threads))))
            losses = {k: F.cross_entropy(torch.from_numpy(v).float(), targets, reduction="none") for k, v in logits.items()}
            for k, v in losses.items():
                nll[k] += float(v.sum())
            for target, difference in zip(targets.tolist(), (losses["int8 tables"] - losses["fp32 tables"]).tolist()):
                by_target[target][0] += 1
                by_target[target][1] += difference
            count += targets.numel()
    tokenizer = reader._tokenizer
    worst = sorted(by_target.items(), key=lambda kv: -kv[1][1])[: args.top]
    record = {
        "run": str(args.run), "data": str(args.data), "masked_tokens": count,
        "perplexity": {k: math.exp(v / count) for k, v in nll.items()},
        "largest_loss_increase": [
            {"wordpiece": tokenizer.convert_ids_to_tokens([t])[0], "count": c, "total_nats": round(s, 3), "mean_nats": round(s / c, 5)}
            for t, (c, s) in worst
        ],
        "machine": cpu_name(),
    }
    records = json.loads(args.json.read_text())["records"] if args.json.is_file() else []
    records = [r for r in records if (r["run"], r["data"]) != (record["run"], record["data"])] + [record]
    write_json(args.json, {"what": __doc__.strip().splitlines()[0], "records": records})
    print(f"{args.run} on {args.data}: {count} masked wordpieces")
    for k, v in record["perplexity"].items():
        print(f"  {k:34s} {v:.2f}")
    print("  largest total loss increase, fp32 -> int8 tables:", ", ".join(f"{w['wordpiece']} {w['total_nats']}" for w in record["largest_loss_increase"]))


if __name__ == "__main__":
    main()
