"""
Packed archives written by `allennlp bitmaps-export`, read without torch or AllenNLP: the archive's
`config.json`, its packed model file and its tokenizer (`tokenizers`' `tokenizer.json`), read
straight out of the tar file into memory (nothing is extracted, so no member can land anywhere).
"""
import json
import posixpath
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Union

from bitmaps_runtime.file_format import PackedModelFile, decode_packed_model

PACKED_MODEL_TYPE = "bitmaps_packed_masked_lm"
CONFIG_NAME = "config.json"


class ArchiveError(ValueError):
    """The file is not a readable packed archive (the message says what is missing or wrong)."""


@dataclass
class PackedArchive:
    path: str
    config: Dict[str, Any]
    packed: PackedModelFile
    tokenizer: Any  # tokenizers.Tokenizer
    max_length: int
    unknown_word: Union[str, None]
    top_k: int
    truncate: bool = False  # the reader's `truncate`: cut sentences past max_length (bitmaps-predict --truncate)


def _member_name(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return posixpath.normpath(name) if name else "."


def _inside(name: str, field: str, source: str) -> str:
    """A relative, downward path inside the archive, or ArchiveError naming the config field."""
    if not isinstance(name, str) or not name or posixpath.isabs(name):
        raise ArchiveError(f"{source}: {field} = {name!r} is not a relative path inside the archive")
    normal = posixpath.normpath(name)
    if normal == ".." or normal.startswith("../"):
        raise ArchiveError(f"{source}: {field} = {name!r} is not a path inside the archive")
    return normal


def load_packed_archive(path: Union[str, Path]) -> PackedArchive:
    """The packed archive at `path`, its packed file validated (`file_format`), its tokenizer loaded."""
    source = str(path)
    if not Path(path).is_file():
        raise ArchiveError(f"{source}: no such file")
    try:
        archive = tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError) as error:
        raise ArchiveError(f"{source}: not a tar archive ({error})") from None
    try:
        return _read_archive(archive, source)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        # gzip and tar read lazily: a truncated or damaged file fails here, member by member
        raise ArchiveError(f"{source}: truncated or corrupt archive ({type(error).__name__}: {error})") from None


def _read_archive(archive: tarfile.TarFile, source: str) -> PackedArchive:
    from tokenizers import Tokenizer  # the one tokenizer dependency, only when an archive is read

    with archive:
        members = {_member_name(m.name): m for m in archive.getmembers() if m.isfile()}

        def read(name: str, what: str) -> bytes:
            member = members.get(name)
            if member is None:
                raise ArchiveError(f"{source}: has no {name} ({what})")
            handle = archive.extractfile(member)
            assert handle is not None
            return handle.read()

        try:
            config = json.loads(read(CONFIG_NAME, "the model's configuration"))
        except ValueError as error:
            raise ArchiveError(f"{source}: {CONFIG_NAME} is not valid JSON ({error})") from None
        model = config.get("model") if isinstance(config, dict) else None
        if not isinstance(model, dict) or model.get("type") != PACKED_MODEL_TYPE:
            found = model.get("type") if isinstance(model, dict) else None
            raise ArchiveError(
                f"{source}: model.type is {found!r}, not {PACKED_MODEL_TYPE!r}; export a trained archive "
                "first: allennlp bitmaps-export MODEL.tar.gz PACKED.tar.gz"
            )
        packed_name = _inside(model.get("packed_file"), "model.packed_file", source)
        packed = decode_packed_model(read(packed_name, "the packed model file"), source=f"{source}:{packed_name}")
        reader = config.get("validation_dataset_reader") or config.get("dataset_reader") or {}
        tokenizer_dir = _inside(reader.get("model_name"), "dataset_reader.model_name", source)
        tokenizer_json = read(posixpath.join(tokenizer_dir, "tokenizer.json"), "the tokenizer")
    try:
        tokenizer = Tokenizer.from_str(tokenizer_json.decode("utf-8"))
    except Exception as error:  # tokenizers raises a bare Exception on a malformed file
        raise ArchiveError(f"{source}: {posixpath.join(tokenizer_dir, 'tokenizer.json')} is not a tokenizers file ({error})") from None
    # a saved tokenizer may pad or truncate every input to a fixed length (all-MiniLM-L6-v2's pads
    # to 128): sentences are batched and checked against max_length here instead
    tokenizer.no_padding()
    tokenizer.no_truncation()
    max_length = min(int(reader.get("max_length", 512)), int(packed.config["max_position_embeddings"]))
    return PackedArchive(
        path=source,
        config=config,
        packed=packed,
        tokenizer=tokenizer,
        max_length=max_length,
        unknown_word=reader.get("unknown_word", "<unk>"),
        top_k=int(model.get("top_k", 5)),
        truncate=bool(reader.get("truncate", False)),
    )
