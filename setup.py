"""bitmaps_allennlp: the AllenNLP plugin (training, distillation, export, the packed model). Its
native kernels and C++ encoder live in the torch-free runtime package, `./runtime`
(`bitmaps_runtime`), which `make install` installs alongside."""
from setuptools import find_packages, setup

setup(
    name="bitmaps_allennlp",
    version="0.1.0",
    description="Binarized Transformers for Making fAst PredictionS: 1-bit BERT as an AllenNLP plugin",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(exclude=["tests", "tests.*", "benchmarks"]),
    python_requires=">=3.9",
    install_requires=[
        "allennlp==2.10.1",
        "torch>=2.0",
        "transformers>=4.30",
        "jsonnet>=0.20",
        "overrides",
        "bitmaps_runtime",
    ],
    extras_require={"test": ["pytest>=7", "pytest-timeout"], "bench": ["matplotlib>=3.7", "onnx>=1.15", "onnxruntime>=1.17", "ctranslate2>=4.0"]},
)
