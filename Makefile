# Everything lives in ./.venv; AllenNLP's stale pins are replaced by requirements/overrides.txt.
PYTHON ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install test test-all demo clean

install:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q "uv>=0.5,<1"
	# --compile-bytecode: this environment sets PYTHONDONTWRITEBYTECODE=1, and without .pyc files
	# every `allennlp` command spends ~30 s compiling its imports.
	$(UV) pip install --python $(VENV)/bin/python --compile-bytecode \
		--override requirements/overrides.txt -e ".[test,bench]"
	$(VENV)/bin/allennlp test-install

test:
	$(VENV)/bin/python -m pytest tests -m "not slow"

test-all:
	$(VENV)/bin/python -m pytest tests

demo:
	$(VENV)/bin/allennlp train training_configs/demo_binary_bert_mlm.jsonnet -s runs/demo --force

clean:
	rm -rf $(VENV) runs build *.egg-info
