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

.PHONY: install test test-all test-native demo clean
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

# the C++ kernel tests, without Python: every kernel path this CPU has against naive loops
NATIVE_TEST := runtime/build/test_kernels
$(NATIVE_TEST): runtime/tests/test_kernels.cpp runtime/tests/build_native_tests.sh $(wildcard runtime/csrc/*.cpp runtime/csrc/*.h)
	bash runtime/tests/build_native_tests.sh $@

test-native: $(NATIVE_TEST)
	$(NATIVE_TEST)

test: $(STAMP) test-native
	$(VENV)/bin/python -m pytest tests -m "not slow"

test-all: $(STAMP) test-native
	$(VENV)/bin/python -m pytest tests

demo: $(STAMP)
	$(VENV)/bin/allennlp train training_configs/demo_binary_bert_mlm.jsonnet -s runs/demo --force

clean:
	rm -rf $(VENV) runs build *.egg-info
