# rnnkit: `make demo` trains and samples end to end; `make test` runs the suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: install demo test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e '.[serve,test]'
	rm -f $(VENV)/.installed-*
	touch $@

# Builds a corpus from this Python's own standard-library source (no download, no
# third-party text), trains for two minutes and prints a sample.
demo: install
	$(BIN)/rnnkit demo

# A first pass runs the CPU-path tests as an AVX2-only CPU would (no AVX-512, no bf16):
# oneDNN and ATen each read their own ISA limit, so a fast machine also checks the fallbacks.
ISA_LIMITED := ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2
CPU_PATH_TESTS := tests/test_perf_paths.py tests/test_sampling.py tests/test_training.py

test: install
	@echo "--- the CPU-path tests as an AVX2-only CPU runs them ($(ISA_LIMITED))"
	$(ISA_LIMITED) $(BIN)/python -m pytest -q $(CPU_PATH_TESTS)
	@echo "--- the whole suite"
	$(BIN)/python -m pytest -q

bench: install
	$(PIP) install --quiet -c constraints.txt -e '.[serve,test,bench]'
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) demo cv runs .pytest_cache
