"""Write a packed model as an AllenNLP archive that `evaluate` and `predict` load directly."""
import gzip
import json
import os
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import Union

from allennlp.common.checks import ConfigurationError
from allennlp.models.archival import CONFIG_NAME, load_archive

from bitmaps_allennlp.models.masked_lm import BinaryMaskedLanguageModel
from bitmaps_allennlp.packed.export import DEFAULT_EMBEDDINGS, PartSizes, pack_masked_lm
from bitmaps_allennlp.packed.file_format import write_packed_model
from bitmaps_runtime.atomic import atomic_file

PACKED_FILE_NAME = "packed_model.safetensors"
TOKENIZER_DIR = "tokenizer"


def _load_archive(archive_file: Union[str, Path]):
    """`load_archive`, with a local tar file unpacked here first: a copy cut short fails inside
    gzip half-way through the extraction, and AllenNLP's own extraction then leaves its partial
    temporary folder behind."""
    if not os.path.isfile(archive_file):
        return load_archive(str(archive_file))  # a folder, or a name `cached_path` resolves
    with tempfile.TemporaryDirectory() as unpacked:
        try:
            with tarfile.open(archive_file) as tar:
                tar.extractall(unpacked)  # through the process's safe extraction filter (common.safe_tar)
        except (EOFError, tarfile.TarError, zlib.error, gzip.BadGzipFile) as error:
            raise ConfigurationError(f"{archive_file}: truncated or corrupt archive ({type(error).__name__}: {error})") from None
        return load_archive(unpacked)


def export_archive(
    archive_file: Union[str, Path],
    output_file: Union[str, Path],
    fp16: bool = False,
    embeddings: str = DEFAULT_EMBEDDINGS,
) -> PartSizes:
    """Load a trained `bitmaps_masked_lm` archive, pack it, and write `output_file` (a tar.gz
    archive of model type `bitmaps_packed_masked_lm`, carrying its tokenizer) atomically."""
    archive = _load_archive(archive_file)
    model = archive.model
    if not isinstance(model, BinaryMaskedLanguageModel):
        already = " (this archive is already packed)" if archive.config["model"].get("type") == "bitmaps_packed_masked_lm" else ""
        raise ConfigurationError(f"{archive_file}: bitmaps-export packs bitmaps_masked_lm models, got {type(model).__name__}{already}")
    try:
        packed, sizes = pack_masked_lm(model._encoder.bert, model._head, fp16=fp16, embeddings=embeddings)
    except ConfigurationError as error:  # what in the model cannot be packed: name the archive too
        raise ConfigurationError(f"{archive_file}: {error.message}") from None
    config = archive.config.as_dict(quiet=True)
    source_model = config["model"]
    config["model"] = {
        "type": "bitmaps_packed_masked_lm",
        "packed_file": PACKED_FILE_NAME,
        "target_namespace": source_model.get("target_namespace", "tags"),
        "top_k": source_model.get("top_k", 5),
    }
    config.pop("trainer", None)
    tokenizer = getattr(archive.dataset_reader, "_tokenizer", None)
    for key in ("dataset_reader", "validation_dataset_reader"):
        if tokenizer is not None and "model_name" in config.get(key, {}):
            # the reader finds it inside the unpacked archive (MaskedLmCorpusReader)
            config[key]["model_name"] = TOKENIZER_DIR
    with tempfile.TemporaryDirectory() as staging:
        write_packed_model(packed, Path(staging) / PACKED_FILE_NAME)
        if tokenizer is not None:
            tokenizer.save_pretrained(os.path.join(staging, TOKENIZER_DIR))
        (Path(staging) / CONFIG_NAME).write_text(json.dumps(config, indent=2))
        archive.model.vocab.save_to_files(os.path.join(staging, "vocabulary"))
        with atomic_file(output_file, "wb") as out, tarfile.open(fileobj=out, mode="w:gz") as tar:
            for name in (CONFIG_NAME, PACKED_FILE_NAME, "vocabulary", TOKENIZER_DIR):
                if os.path.exists(os.path.join(staging, name)):
                    tar.add(os.path.join(staging, name), arcname=name)
    return sizes
