"""Safe archive extraction is defined in the torch-free runtime (`bitmaps_runtime.safe_tar`), which
reads packed archives on its own; bitmaps_allennlp installs the same filter process-wide."""
from bitmaps_runtime.safe_tar import UnsafeArchiveMember, install_safe_extraction, safe_extraction_filter  # noqa: F401
