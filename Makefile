# Two commands do all set-up:  `make demo` (create .venv, install, run the offline demo)
# and `make test` (the test suite). No command downloads a model or a data set.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install demo test clean

install: $(VENV)/.installed

# torch==2.13.0 first: pip takes the CPU wheel (an unpinned torch would pull a multi-GB CUDA build).
# extras/rerankit-amx: the optional AMX kernels, compiled here at install time (x86-64 Linux, gcc >= 11);
# where that fails rerankit runs without them, and their tests skip.
$(VENV)/.installed: pyproject.toml extras/rerankit-amx/setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[test]"
	$(BIN)/python -m pip install -q ./extras/rerankit-amx || echo "rerankit-amx not built: the AMX kernels stay off"
	touch $@

demo: install
	$(BIN)/rerankit demo

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache
