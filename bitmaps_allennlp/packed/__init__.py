from bitmaps_allennlp.packed.bit_packing import BIT_CONVENTION, pack_signs, unpack_signs
from bitmaps_allennlp.packed.file_format import PackedFormatError, read_packed_model
