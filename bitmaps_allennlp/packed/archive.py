"""Write a packed model as an AllenNLP archive that `evaluate` and `predict` load directly."""
import json
import os
import tarfile
import tempfile
from pathlib import Path
from typing import Union

from allennlp.models.archival import CONFIG_NAME, load_archive

from bitmaps_allennlp.packed.export import PartSizes, pack_masked_lm
from bitmaps_allennlp.packed.file_format import write_packed_model

PACKED_FILE_NAME = "packed_model.safetensors"


def export_archive(
    archive_file: Union[str, Path], output_file: Union[str, Path], fp16: bool = False
) -> PartSizes:
    """Load a trained `bitmaps_masked_lm` archive, pack it, and write `output_file` (a tar.gz
    archive of model type `bitmaps_packed_masked_lm`) atomically."""
    archive = load_archive(str(archive_file))
    packed, sizes = pack_masked_lm(archive.model, fp16=fp16)
    config = archive.config.as_dict(quiet=True)
    source_model = config["model"]
    config["model"] = {
        "type": "bitmaps_packed_masked_lm",
        "packed_file": PACKED_FILE_NAME,
        "target_namespace": source_model.get("target_namespace", "tags"),
        "top_k": source_model.get("top_k", 5),
    }
    config.pop("trainer", None)
    output_file = Path(output_file)
    with tempfile.TemporaryDirectory(dir=output_file.parent) as staging:
        write_packed_model(packed, Path(staging) / PACKED_FILE_NAME)
        (Path(staging) / CONFIG_NAME).write_text(json.dumps(config, indent=2))
        archive.model.vocab.save_to_files(os.path.join(staging, "vocabulary"))
        partial = Path(staging) / "model.tar.gz"
        with tarfile.open(partial, "w:gz") as tar:
            for name in (CONFIG_NAME, PACKED_FILE_NAME, "vocabulary"):
                tar.add(os.path.join(staging, name), arcname=name)
        os.replace(partial, output_file)
    return sizes
