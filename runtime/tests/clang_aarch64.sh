#!/bin/sh
# clang++ cross-compiling for aarch64 Linux against Debian's aarch64 GCC toolchain (its libraries,
# headers and linker; apt-get install -y clang g++-aarch64-linux-gnu): build_native_tests.sh takes
# this file as CXX (make test-clang).
exec clang++ --target=aarch64-linux-gnu --gcc-toolchain=/usr "$@"
