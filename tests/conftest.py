from contextlib import contextmanager
from pathlib import Path

import pytest

import bitmaps_allennlp  # noqa: F401  (registers our classes, as .allennlp_plugins does for the CLI)
from bitmaps_allennlp import kernels

from tests.tiny_bert import FIXTURES, write_tiny_bert

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"



@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A tiny BERT checkpoint without a masked-LM head (like all-MiniLM-L6-v2)."""
    return write_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="session")
def tiny_bert_with_head_dir(tmp_path_factory) -> Path:
    return write_tiny_bert(tmp_path_factory.mktemp("tiny_bert_mlm"), with_mlm_head=True, seed=1)


@pytest.fixture(scope="session")
def corpus_path() -> Path:
    return FIXTURES / "corpus.txt"


@pytest.fixture(scope="session")
def valid_corpus_path() -> Path:
    return FIXTURES / "corpus_valid.txt"


@contextmanager
def selected_kernel_path(path: str):
    """Runs the body on kernel path `path` (as `BITMAPS_KERNELS` would choose it), then restores the
    path that was selected before."""
    from bitmaps_runtime import native

    previous = native.backend()
    native.select(path)
    try:
        yield path
    finally:
        native.select(previous)


@pytest.fixture(params=kernels.available_paths())
def path(request):
    """Each kernel path this machine can run (the pure-torch reference, and the native scalar, AVX2
    and AVX-512 paths where built and supported), selected for the test's body."""
    with selected_kernel_path(request.param):
        yield request.param
