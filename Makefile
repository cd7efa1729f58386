# Two commands do all set-up:  `make demo` (create .venv, install, run the offline demo)
# and `make test` (the test suite and the documentation build). No command downloads a model or a data set.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install amx extras demo test clean

install: $(VENV)/.installed

# torch==2.13.0 first: pip takes the CPU wheel (an unpinned torch would pull a multi-GB CUDA build).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

# The optional AMX kernels (extras/rerankit-amx), compiled at install time (x86-64 Linux, gcc >= 11).
# Without them rerankit runs on its other backends and the kernels' tests skip.
amx: install
	$(BIN)/python -m pip install -q ./extras/rerankit-amx

# The optional extras: scale-out (Ray, PostgreSQL, and pgserver, which the tests use to start a real
# PostgreSQL with pgvector) and the local LLM (llama.cpp, compiled here for AVX2 without -march=native:
# the native build's AMX code stopped with a general protection fault on a Sapphire Rapids VM).
# Without them those tests skip.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
extras: install
	$(BIN)/python -m pip install -q -e ".[ray,postgres,browser]" "pgserver>=0.1.4"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install -q --no-cache-dir -e ".[llm]"

demo: install
	$(BIN)/rerankit demo

# The test suite, then the documentation site (mkdocs.yml, docs/): --strict fails on a broken link or
# anchor and on a page missing from the nav. The site goes to .site/ (ignored by git).
test: install
	$(BIN)/python -m pytest -q
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --quiet --site-dir .site

clean:
	rm -rf $(VENV) .pytest_cache .site
