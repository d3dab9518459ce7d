import glob
import os
import platform
import tempfile

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

CSRC = "bitmaps_allennlp/csrc"
BASE_FLAGS = ["-O3", "-std=c++17", "-fvisibility=hidden"]
# GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own _mm512_undefined_* values
AVX512_FLAGS = ["-mavx512f", "-mavx512bw", "-mpopcnt", "-Wno-maybe-uninitialized"]
# Each instruction-set variant is its own file with its own flags; dispatch.cpp picks one at
# run time after checking the CPU, so the module still loads on CPUs without them.
ISA_SOURCES = {
    "x86_64": [
        ("BITMAPS_HAVE_AVX2", f"{CSRC}/kernels_avx2.cpp", ["-mavx2", "-mfma", "-mpopcnt"]),
        ("BITMAPS_HAVE_AVX512", f"{CSRC}/kernels_avx512.cpp", AVX512_FLAGS),
        (
            "BITMAPS_HAVE_AVX512_VNNI",
            f"{CSRC}/kernels_avx512_vnni.cpp",
            AVX512_FLAGS + ["-mavx512vl", "-mavx512vpopcntdq", "-mavx512vnni", "-mavx512bitalg"],
        ),
    ],
}


class BuildNative(build_ext):
    """Compiles the ISA-specific kernels the compiler supports, each with its own flags. No torch
    and no network: only the C++ compiler and the Python headers."""

    def _compiler_accepts(self, flags):
        with tempfile.TemporaryDirectory() as tmp:
            source = os.path.join(tmp, "probe.cpp")
            with open(source, "w") as probe:
                probe.write("#include <immintrin.h>\nint main() { return 0; }\n")
            try:
                self.compiler.compile([source], output_dir=tmp, extra_postargs=BASE_FLAGS + flags)
            except Exception:
                return False
        return True

    def build_extension(self, ext):
        for macro, source, flags in ISA_SOURCES.get(platform.machine(), []):
            if not self._compiler_accepts(flags):
                print(f"bitmaps_allennlp: compiler rejects {flags}; {source} is not built")
                continue
            objects = self.compiler.compile(
                [source], output_dir=self.build_temp, extra_postargs=BASE_FLAGS + flags
            )
            ext.extra_objects.extend(objects)
            ext.define_macros.append((macro, "1"))
        super().build_extension(ext)


native = Extension(
    "bitmaps_allennlp._native",
    sources=[f"{CSRC}/{name}" for name in ("binding.cpp", "dispatch.cpp", "thread_pool.cpp", "kernels_scalar.cpp", "int8_lut.cpp")],
    include_dirs=[CSRC],
    depends=sorted(glob.glob(f"{CSRC}/*.h")),
    extra_compile_args=BASE_FLAGS,
    extra_link_args=["-pthread"],
    language="c++",
    # a failed build leaves the pure-torch reference in charge; the package still installs
    optional=True,
)

setup(
    name="bitmaps_allennlp",
    version="0.1.0",
    description="Binarized Transformers for Making fAst PredictionS: 1-bit BERT as an AllenNLP plugin",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(exclude=["tests", "tests.*", "benchmarks"]),
    package_data={"bitmaps_allennlp": ["csrc/*.h", "csrc/*.cpp"]},
    python_requires=">=3.9",
    install_requires=[
        "allennlp==2.10.1",
        "torch>=2.0",
        "transformers>=4.30",
        "jsonnet>=0.20",
        "overrides",
    ],
    extras_require={"test": ["pytest>=7", "pytest-timeout"], "bench": ["matplotlib>=3.7"]},
    ext_modules=[] if os.environ.get("BITMAPS_BUILD_NATIVE") == "0" else [native],
    cmdclass={"build_ext": BuildNative},
)
