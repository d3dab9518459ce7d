"""
The one place that loads the native kernels. Only ImportError/OSError are caught, and the reason
is kept: `backend()` reports which path runs, and the first use of a kernel without the native
module warns once, saying why.

`BITMAPS_KERNELS` forces a path: `reference` (pure torch), `scalar`, `avx2`, `avx512`,
`avx512_vnni`, `avx512_vbmi`, or `auto` (the default, chosen in `csrc/dispatch.cpp`: on AMD CPUs
with AVX-512 VPOPCNTDQ + VNNI + BITALG + VBMI (Zen 4 and later) `avx512_vbmi`, whose W1A8 looks
up tables with vpermb; on other CPUs with the first four `avx512_vnni`; else AVX2, whose kernels
beat the plain AVX-512 ones on AMD Zen 4, else the best path the CPU has). Forcing a native path that is unavailable is an error,
not a silent fallback.
"""
import os
import warnings
from types import ModuleType
from typing import List, Optional

ENV_VARIABLE = "BITMAPS_KERNELS"
SPIN_VARIABLE = "BITMAPS_SPIN_US"  # read by csrc/thread_pool.cpp, checked here


class SettingError(ValueError):
    """An environment variable of the runtime (`BITMAPS_KERNELS`, `BITMAPS_THREADS`,
    `BITMAPS_SPIN_US`) holds a value it cannot use; the message names the variable."""

try:
    from bitmaps_runtime import _native as _loaded
except (ImportError, OSError) as error:  # not built, or built for another platform
    _loaded = None
    _load_error: Optional[str] = f"{type(error).__name__}: {error}"
else:
    _load_error = None

_selected: Optional[str] = None  # None until the first use reads the environment
_warned = False


def available_paths() -> List[str]:
    """Every path this machine can run: `reference`, `scalar`, then by instruction set (`backend()`
    tells which one `auto` chose)."""
    return ["reference"] + (list(_loaded.available_isas()) if _loaded is not None else [])


def select(path: str) -> None:
    """Use `path` from now on (as `BITMAPS_KERNELS` would)."""
    global _selected
    path = path.strip().lower() or "auto"
    if path == "reference":
        _selected = path
        return
    if _loaded is None:
        if path == "auto":
            _selected = "reference"
            return
        raise RuntimeError(
            f"{ENV_VARIABLE}={path} asks for a native kernel path, but the native extension is not "
            f"available ({_load_error}); rebuild with `make install` (or `pip install ./runtime`) or use {ENV_VARIABLE}=reference"
        )
    if path == "auto":
        path = _loaded.default_isa()
    _loaded.set_isa(path)  # ValueError naming the available paths if this one is not
    _selected = path


def backend() -> str:
    """`reference`, or the native path in use (`scalar`, `avx2`, `avx512`, `avx512_vnni`, `avx512_vbmi`)."""
    if _selected is None:
        spin = os.environ.get(SPIN_VARIABLE, "").strip()
        if spin and not spin.isdigit():
            # the C++ pool would read "abc" or "-5" as 0 (never spin) without a word
            raise SettingError(f"{SPIN_VARIABLE}={spin!r}: expected microseconds, a whole number >= 0 (default 100)")
        try:
            select(os.environ.get(ENV_VARIABLE, "auto"))
        except ValueError as error:
            raise SettingError(f"{ENV_VARIABLE}: {error}") from None
    return _selected  # type: ignore[return-value]


def native_module() -> Optional[ModuleType]:
    """The native module when a native path is selected, else None (warning once if the
    extension could not be loaded)."""
    global _warned
    if backend() == "reference":
        if _loaded is None and not _warned:
            _warned = True
            warnings.warn(
                "bitmaps_allennlp: the native 1-bit kernels are not built "
                f"({_load_error}); using the pure-torch reference, which is much slower.",
                RuntimeWarning,
                stacklevel=3,
            )
        return None
    return _loaded
