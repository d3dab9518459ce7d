import argparse
import logging
import os
from pathlib import Path

from allennlp.common.checks import ConfigurationError
from allennlp.commands.subcommand import Subcommand

from bitmaps_allennlp.common.checkpoints import names_a_local_path
from bitmaps_allennlp.commands.packed_archive import export_archive
from bitmaps_allennlp.packed.export import DEFAULT_EMBEDDINGS, EMBEDDING_OPTIONS, PartSizes

logger = logging.getLogger(__name__)


@Subcommand.register("bitmaps-export")
class BitmapsExport(Subcommand):
    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = (
            "Pack a trained bitmaps_masked_lm archive into a 1-bit model: binarized weights as "
            "sign bits in 64-bit words plus per-channel scales, in a safetensors file with a "
            "versioned, checksummed header. The output is an AllenNLP archive (model type "
            "bitmaps_packed_masked_lm) that `allennlp evaluate` and `allennlp predict` load."
        )
        subparser = parser.add_parser(self.name, description=description, help="Export a packed 1-bit model.")
        subparser.add_argument("archive_file", type=str, help="trained model archive (model.tar.gz)")
        subparser.add_argument("output_file", type=str, help="where to write the packed archive")
        subparser.add_argument(
            "--embeddings",
            choices=EMBEDDING_OPTIONS,
            default=DEFAULT_EMBEDDINGS,
            help="how to store the word and position embedding tables (and so the tied MLM decoder) unless they "
            f"were trained quantized (binary or int8, stored as trained): absmax int8 per row (int8), the same with a scale per column (int8_col), per "
            f"group of 64 values (int8_g64), fp16 or fp32 "
            f"(default: {DEFAULT_EMBEDDINGS})",
        )
        subparser.add_argument("--fp16", action="store_true", help="store the other non-binarized tensors as fp16")
        subparser.add_argument("--force", action="store_true", help="overwrite output_file if it exists")
        subparser.set_defaults(func=_export_from_args)
        return subparser


def _export_from_args(args: argparse.Namespace) -> None:
    """The command: what the user got wrong (a missing or unpackable archive, an output that
    exists) is one line on stderr and exit status 1, not a traceback."""
    output = Path(args.output_file)
    if names_a_local_path(args.archive_file) and not os.path.exists(os.path.expanduser(args.archive_file)):
        raise SystemExit(f"bitmaps-export: {args.archive_file}: no such file or directory")
    if output.exists() and not args.force:
        raise SystemExit(f"bitmaps-export: {output} exists; pass --force to overwrite it")
    if not output.parent.is_dir():
        raise SystemExit(f"bitmaps-export: folder {output.parent} does not exist")
    try:
        sizes = export_archive(args.archive_file, output, fp16=args.fp16, embeddings=args.embeddings)
    except ConfigurationError as error:  # export_archive names the archive and what is wrong with it
        raise SystemExit(f"bitmaps-export: {error.message}") from None
    print(format_sizes(sizes, output.stat().st_size))


def format_sizes(sizes: PartSizes, archive_bytes: int) -> str:
    rows = [f"{'part':<46} {'stored':>12} {'as fp32':>12} {'ratio':>8}"]
    for part, stored in sizes.stored.items():
        fp32 = sizes.fp32[part]
        rows.append(f"{part:<46} {stored:>12,} {fp32:>12,} {fp32 / stored:>7.1f}x")
    stored, fp32 = sum(sizes.stored.values()), sum(sizes.fp32.values())
    rows.append(f"{'total':<46} {stored:>12,} {fp32:>12,} {fp32 / stored:>7.1f}x")
    rows.append(f"archive on disk (tar.gz): {archive_bytes:,} bytes")
    return "\n".join(rows)
