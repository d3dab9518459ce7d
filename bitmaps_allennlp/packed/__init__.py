from bitmaps_allennlp.packed.file_format import PackedFormatError, read_packed_model
from bitmaps_allennlp.packed.schemes import SCHEMES, PackedScheme, scheme_for, scheme_named
