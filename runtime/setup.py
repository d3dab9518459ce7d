"""bitmaps_runtime: the packed inference core of Bitmaps without torch. The C++ kernels and the
encoder forward, a numpy-only binding, the packed file reader and the `bitmaps-predict` command.
Builds with a C++17 compiler and the Python headers alone (no torch, no numpy headers, no network
beyond what pip itself needs)."""
import os
import platform
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = "csrc"
# -ffp-contract=off: the epilogues are defined as separate multiplies and adds (as training computes
# them); a compiler fusing a * b + c into one FMA (GCC does by default on aarch64, and on x86 with
# -mfma) would round differently and break bit-exact agreement with training.
BASE_FLAGS = ["-O3", "-std=c++17", "-fvisibility=hidden", "-ffp-contract=off"]
# GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own _mm512_undefined_* values
AVX512_FLAGS = ["-mavx512f", "-mavx512bw", "-mfma", "-mpopcnt", "-Wno-maybe-uninitialized"]
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
        (
            "BITMAPS_HAVE_AVX512_VBMI",
            f"{CSRC}/kernels_avx512_vbmi.cpp",
            AVX512_FLAGS + ["-mavx512vl", "-mavx512vnni", "-mavx512vbmi"],
        ),
    ],
    # Advanced SIMD is part of ARMv8-A: no flags; the dot product is ARMv8.2's, checked at run time
    "aarch64": [
        ("BITMAPS_HAVE_NEON", f"{CSRC}/kernels_neon.cpp", []),
        ("BITMAPS_HAVE_NEON_DOTPROD", f"{CSRC}/kernels_neon_dotprod.cpp", ["-march=armv8.2-a+dotprod"]),
    ],
}
# platform.machine() names one architecture differently by system: Linux says aarch64 where macOS
# says arm64 (Apple silicon) and Windows ARM64, and Windows AMD64 for x86_64
MACHINE_NAMES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}


def target_machine() -> str:
    """The ISA_SOURCES key of the machine being built for."""
    return MACHINE_NAMES.get(platform.machine().lower(), platform.machine())


# the portable core: every file here is compiled with BASE_FLAGS only
CORE_SOURCES = [
    f"{CSRC}/{name}"
    for name in (
        "dispatch.cpp", "thread_pool.cpp", "kernels_scalar.cpp", "int8_lut.cpp", "linear.cpp", "encoder.cpp", "model_builder.cpp"
    )
]


class BuildNative(build_ext):
    """Compiles the ISA-specific kernels the compiler supports, each with its own flags."""

    def _compiler_accepts(self, flags):
        with tempfile.TemporaryDirectory() as tmp:
            source = os.path.join(tmp, "probe.cpp")
            header = "arm_neon.h" if target_machine() == "aarch64" else "immintrin.h"
            with open(source, "w") as probe:
                probe.write(f"#include <{header}>\nint main() {{ return 0; }}\n")
            try:
                self.compiler.compile([source], output_dir=tmp, extra_postargs=BASE_FLAGS + flags)
            except Exception:
                return False
        return True

    def build_extension(self, ext):
        for macro, source, flags in ISA_SOURCES.get(target_machine(), []):
            if not self._compiler_accepts(flags):
                print(f"bitmaps_runtime: compiler rejects {flags}; {source} is not built")
                continue
            objects = self.compiler.compile([source], output_dir=self.build_temp, extra_postargs=BASE_FLAGS + flags)
            ext.extra_objects.extend(objects)
            ext.define_macros.append((macro, "1"))
        super().build_extension(ext)


native = Extension(
    "bitmaps_runtime._native",
    sources=[f"{CSRC}/binding.cpp"] + CORE_SOURCES,
    include_dirs=[CSRC],
    # every header and source of csrc, the ISA files included: those are compiled in build_extension
    # outside `sources`, and an edit of one alone must still relink the extension
    depends=sorted(os.path.join(CSRC, name) for name in os.listdir(os.path.join(HERE, CSRC)) if name.endswith((".h", ".cpp"))),
    extra_compile_args=BASE_FLAGS,
    extra_link_args=["-pthread"],
    language="c++",
    # a failed build leaves bitmaps_allennlp on its pure-torch reference; the package still installs
    optional=True,
)

setup(
    name="bitmaps_runtime",
    version="0.1.0",
    description="Bitmaps packed 1-bit BERT inference without torch: C++ kernels and encoder, numpy binding, bitmaps-predict",
    packages=["bitmaps_runtime"],
    python_requires=">=3.9",
    install_requires=["numpy>=1.21", "tokenizers>=0.13"],
    ext_modules=[] if os.environ.get("BITMAPS_BUILD_NATIVE") == "0" else [native],
    cmdclass={"build_ext": BuildNative},
    entry_points={"console_scripts": ["bitmaps-predict=bitmaps_runtime.predict:main"]},
)
