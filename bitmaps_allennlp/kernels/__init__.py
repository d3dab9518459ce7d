"""The 1-bit compute paths. Only the pure-torch reference is available in this release."""
from bitmaps_allennlp.kernels.reference import binary_weight_linear, xnor_popcount_dot


def backend() -> str:
    """Which implementation the packed model runs on."""
    return "reference"
