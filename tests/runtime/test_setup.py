"""runtime/setup.py picks each instruction-set file by the machine it builds for: the names
platforms give one architecture must all reach the same kernels (macOS on Apple silicon reports
`arm64`, where Linux reports `aarch64`: without the mapping a Mac would build no NEON kernel)."""
import platform
import runpy
from pathlib import Path

import pytest
import setuptools

SETUP = Path(__file__).resolve().parents[2] / "runtime" / "setup.py"


@pytest.mark.parametrize(
    "reported,expected,kernel",
    [("arm64", "aarch64", "kernels_neon.cpp"), ("ARM64", "aarch64", "kernels_neon.cpp"),
     ("aarch64", "aarch64", "kernels_neon.cpp"), ("AMD64", "x86_64", "kernels_avx2.cpp"),
     ("x86_64", "x86_64", "kernels_avx2.cpp")],
)
def test_every_name_of_an_architecture_builds_its_kernels(reported, expected, kernel, monkeypatch):
    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: None)
    monkeypatch.setattr(platform, "machine", lambda: reported)
    setup = runpy.run_path(str(SETUP), run_name="setup_under_test")
    assert setup["target_machine"]() == expected
    assert any(source.endswith(kernel) for _, source, _ in setup["ISA_SOURCES"][setup["target_machine"]()])
