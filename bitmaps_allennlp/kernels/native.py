"""The kernel-path selection lives in the torch-free runtime (`bitmaps_runtime.native`); this
name stays for the torch front end's imports."""
from bitmaps_runtime.native import ENV_VARIABLE, available_paths, backend, native_module, select  # noqa: F401
