"""
The numeric rules that training, the pure-torch reference kernels and the native kernels share,
each defined once: the 1-bit layout (`bit_packing`), the sign with sign(0) = +1 (`sign`) and
absmax int8 quantization (`int8`). This package imports nothing of the rest of Bitmaps, so every
layer (training modules, kernels, packed format) can read it.
"""
