# Everything lives in ./.venv; AllenNLP's stale pins are replaced by requirements/overrides.txt.
# `make demo` and `make test` each set the environment up when it is missing or out of date.
PYTHON ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
# Written last by a successful install, removed first by every install: an install that is
# interrupted or fails leaves no stamp, so the next command installs again.
STAMP := $(VENV)/.bitmaps-installed
# What the installed environment is built from; a change to any of these reinstalls (and rebuilds
# the native extension).
INSTALL_INPUTS := Makefile setup.py runtime/setup.py $(wildcard requirements/*.txt) \
	$(wildcard runtime/csrc/*.cpp runtime/csrc/*.h)
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install test test-all test-native test-arm test-clang demo clean
.DELETE_ON_ERROR:

install: $(STAMP)

$(STAMP): $(INSTALL_INPUTS)
	rm -f $(STAMP)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q "uv>=0.5,<1"
	# --compile-bytecode: this environment sets PYTHONDONTWRITEBYTECODE=1, and without .pyc files
	# every `allennlp` command spends ~30 s compiling its imports.
	$(UV) pip install --python $(VENV)/bin/python --compile-bytecode \
		--override requirements/overrides.txt --reinstall-package bitmaps_allennlp \
		--reinstall-package bitmaps_runtime -e ./runtime -e ".[test,bench]"
	$(VENV)/bin/allennlp test-install
	touch $(STAMP)

# the C++ tests, without Python: every kernel path this CPU has against naive loops, the encoder
# end to end against a golden output of the torch reference (runtime/tests/make_golden.py), and
# the thread pool (under ThreadSanitizer where the compiler has it)
NATIVE_TEST := runtime/build/test_kernels
GOLDEN := runtime/tests/golden/tiny_bit_w1a1.bin runtime/tests/golden/tiny_bit_w1a1_int8_col.bin
NATIVE_SOURCES := runtime/tests/test_kernels.cpp runtime/tests/test_encoder_golden.cpp runtime/tests/test_thread_pool.cpp \
	runtime/tests/build_native_tests.sh \
	$(wildcard runtime/csrc/*.cpp runtime/csrc/*.h)
$(NATIVE_TEST): $(NATIVE_SOURCES)
	bash runtime/tests/build_native_tests.sh $@

# running a build of the three programs: natively, and for aarch64 under qemu (on the default CPU,
# which has the dot product, and as a Cortex-A53, ARMv8.0, which has not)
define run_native_tests
	$(1)
	$(1)_pool
	for fixture in $(GOLDEN); do $(1)_golden $$fixture || exit 1; done
endef
define run_arm_tests
	BITMAPS_EXPECT_PATHS=scalar,neon,neon_dotprod qemu-aarch64 -L /usr/aarch64-linux-gnu $(1)
	@echo "the same on an ARMv8.0 core without the dot product (Cortex-A53): no neon_dotprod"
	BITMAPS_EXPECT_PATHS=scalar,neon qemu-aarch64 -cpu cortex-a53 -L /usr/aarch64-linux-gnu $(1)
	for fixture in $(GOLDEN); do qemu-aarch64 -L /usr/aarch64-linux-gnu $(1)_golden $$fixture || exit 1; done
	qemu-aarch64 -L /usr/aarch64-linux-gnu $(1)_pool
endef

test-native: $(NATIVE_TEST)
	$(call run_native_tests,$(NATIVE_TEST))

# the same tests for aarch64 (NEON), cross-compiled with Debian's toolchain and run under qemu:
# apt-get install -y g++-aarch64-linux-gnu qemu-user
ARM_CXX ?= aarch64-linux-gnu-g++
ARM_TEST := runtime/build/test_kernels_arm
$(ARM_TEST): $(NATIVE_SOURCES)
	CXX=$(ARM_CXX) bash runtime/tests/build_native_tests.sh $@ -static

test-arm: $(ARM_TEST)
	$(call run_arm_tests,$(ARM_TEST))

# make test runs the aarch64 tests when the cross toolchain and qemu are installed (.ci/run installs them)
HAVE_ARM := $(shell command -v $(ARM_CXX) >/dev/null 2>&1 && command -v qemu-aarch64 >/dev/null 2>&1 && echo yes)

# the same programs built by clang, which macOS (Apple silicon), Termux and Android build the runtime
# with: for this CPU, and cross for aarch64 when the toolchain above is there (apt-get install -y clang)
CLANG_TEST := runtime/build/test_kernels_clang
CLANG_ARM_TEST := runtime/build/test_kernels_arm_clang
$(CLANG_TEST): $(NATIVE_SOURCES)
	CXX=clang++ bash runtime/tests/build_native_tests.sh $@
$(CLANG_ARM_TEST): $(NATIVE_SOURCES) runtime/tests/clang_aarch64.sh
	CXX=runtime/tests/clang_aarch64.sh bash runtime/tests/build_native_tests.sh $@ -static

test-clang: $(CLANG_TEST) $(if $(HAVE_ARM),$(CLANG_ARM_TEST))
	$(call run_native_tests,$(CLANG_TEST))
	$(if $(HAVE_ARM),$(call run_arm_tests,$(CLANG_ARM_TEST)))

HAVE_CLANG := $(shell command -v clang++ >/dev/null 2>&1 && echo yes)
NATIVE_CHECKS := test-native $(if $(HAVE_ARM),test-arm) $(if $(HAVE_CLANG),test-clang)

test: $(STAMP) $(NATIVE_CHECKS)
	$(VENV)/bin/python -m pytest tests -m "not slow"

test-all: $(STAMP) $(NATIVE_CHECKS)
	$(VENV)/bin/python -m pytest tests

# train, export the packed 1-bit model, evaluate both archives on the same blocks and masks, fill a
# mask with the torch-free runtime, then time the packed encoder against torch fp32 and ONNX
# Runtime int8 (scripts/demo_summary.py)
DEMO := runs/demo
DEMO_DATA := ../shared/data/models/all-MiniLM-L6-v2/config.json ../shared/data/wikitext-2/train.txt ../shared/data/wikitext-2/valid.txt
demo: $(STAMP)
	@for f in $(DEMO_DATA); do [ -f "$$f" ] || { echo "make demo: $$f not found; the demo reads the shared data next to this checkout (../shared/data, see README)" >&2; exit 2; }; done
	$(VENV)/bin/allennlp train training_configs/demo_binary_bert_mlm.jsonnet -s $(DEMO) --force
	$(VENV)/bin/allennlp bitmaps-export $(DEMO)/model.tar.gz $(DEMO)/packed.tar.gz
	$(VENV)/bin/allennlp evaluate $(DEMO)/model.tar.gz ../shared/data/wikitext-2/valid.txt --output-file $(DEMO)/metrics_trained.json
	$(VENV)/bin/allennlp evaluate $(DEMO)/packed.tar.gz ../shared/data/wikitext-2/valid.txt --output-file $(DEMO)/metrics_packed.json
	$(VENV)/bin/bitmaps-predict $(DEMO)/packed.tar.gz "the capital of france is [MASK] ."
	$(VENV)/bin/python scripts/demo_summary.py $(DEMO)

clean:
	rm -rf $(VENV) runs build *.egg-info
