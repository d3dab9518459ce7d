"""The packed model file is defined in the torch-free runtime (`bitmaps_runtime.file_format`),
which reads it on machines without torch; these names stay for bitmaps_allennlp's imports."""
from bitmaps_runtime.file_format import (  # noqa: F401
    FORMAT_VERSION,
    MAGIC,
    PackedFormatError,
    PackedModelFile,
    decode_packed_model,
    encode_packed_model,
    expected_linears,
    expected_tables,
    read_packed_model,
    write_packed_model,
)
