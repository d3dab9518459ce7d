#!/usr/bin/env python
"""
Per layer of a trained archive's encoder: how large the attention block's output is against the
residual stream it is added to, and how alike the layer's output is across positions. For
diagnosing a student that has stopped using its context (every position's hidden state near the
sequence mean, so the masked-LM head can only predict word frequencies).

    python scripts/residual_magnitudes.py --archive "BiBERT=runs/probe_bibert/base/model.tar.gz" \\
        --archive "softmax=runs/probe_bibert/softmax_attention/model.tar.gz" \\
        --data ../shared/data/wikitext-2/valid.txt --json results/bibert_residual_magnitudes.json

Reads the first --blocks blocks of --data with the archive's own reader (its masks), runs the
model in eval mode and records, for each layer: the mean L2 norm over positions of the layer's
input (the residual stream), of the attention output projection's output (what is added to it
before the LayerNorm), and the mean cosine similarity of the layer's output rows to their
sequence's mean row.
"""
import argparse
import sys
from pathlib import Path
from typing import Dict, List

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from atomic_json import write_json  # noqa: E402


def bert_of(model: torch.nn.Module) -> torch.nn.Module:
    for module in model.modules():
        encoder = getattr(module, "encoder", None)
        if encoder is not None and hasattr(encoder, "layer"):
            return module
    raise SystemExit("the archive's model has no BERT encoder (no module with encoder.layer)")


def measure(archive_path: str, data: str, blocks: int) -> List[Dict]:
    from allennlp.data import Batch
    from allennlp.models.archival import load_archive

    archive = load_archive(archive_path)
    model = archive.model.eval()
    instances = []
    for instance in archive.dataset_reader.read(data):
        instances.append(instance)
        if len(instances) == blocks:
            break
    if not instances:
        raise SystemExit(f"{data}: the archive's reader read no blocks")
    batch = Batch(instances)
    batch.index_instances(model.vocab)
    layers = bert_of(model).encoder.layer
    seen: Dict = {}
    hooks = []
    for index, layer in enumerate(layers):
        hooks.append(layer.attention.output.dense.register_forward_hook(
            lambda module, inputs, output, index=index: seen.__setitem__(("attention", index), output.detach())))
        hooks.append(layer.register_forward_hook(
            lambda module, inputs, output, index=index: seen.__setitem__(("layer", index), (inputs[0].detach(), output[0].detach()))))
    with torch.no_grad():
        model(**batch.as_tensor_dict())
    for hook in hooks:
        hook.remove()
    rows = []
    for index in range(len(layers)):
        residual, output = seen[("layer", index)]
        attention = seen[("attention", index)]
        similarity = torch.nn.functional.cosine_similarity(output, output.mean(1, keepdim=True), dim=-1).mean()
        rows.append({"layer": index, "residual_norm": residual.norm(dim=-1).mean().item(),
                     "attention_output_norm": attention.norm(dim=-1).mean().item(),
                     "output_cosine_to_sequence_mean": similarity.item()})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", action="append", required=True, metavar="LABEL=ARCHIVE")
    parser.add_argument("--data", required=True)
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    import bitmaps_allennlp  # noqa: F401  registers the archives' classes

    torch.manual_seed(0)
    report = {"what": __doc__.strip().split("\n\n")[0], "data": args.data, "blocks": args.blocks, "archives": []}
    for item in args.archive:
        label, sep, path = item.partition("=")
        if not sep or not Path(path).is_file():
            parser.error(f"--archive {item!r}: expected LABEL=ARCHIVE with an existing model.tar.gz")
        rows = measure(path, args.data, args.blocks)
        report["archives"].append({"label": label, "archive": path, "layers": rows})
        print(label)
        for row in rows:
            print(f"  layer {row['layer']}: residual {row['residual_norm']:8.2f}, attention output "
                  f"{row['attention_output_norm']:9.2f}, output cosine to the sequence mean "
                  f"{row['output_cosine_to_sequence_mean']:.3f}")
    write_json(args.json, report)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
