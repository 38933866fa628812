# The two set-up commands of the README:
#   make demo   create the environment, install, build MNIST-Scale (6 realisations), verify it
#   make test   create the environment, install, lint and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= data
FASHION_DIR := /usr/share/datasets/fashion-mnist

.PHONY: install demo test test-all lint bench clean

$(BIN)/scale-datasets: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@echo "installing scale-datasets and its dependencies: torch from PyPI brings its CUDA" \
	      "libraries (about 5.9 GB in all, a minute or more; see the README for a CPU-only torch)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	# Real UCR/UEA .ts files for signals-1d and its tests (the wheel's data only: no deps)
	$(BIN)/python -m pip install -q --no-deps aeon
	touch $@

install: $(BIN)/scale-datasets

# MNIST is downloaded with torchvision when the network allows. Where it cannot be had (exit 4),
# the same protocol is built from Debian's Fashion-MNIST, installed here when run as root.
demo: install
	@mkdir -p $(DATA)
	@if $(BIN)/scale-datasets -v build mnist-scale --realisations 6 --source mnist \
	      --out $(DATA)/mnist-scale-mnist.h5 --overwrite; then \
	    out=$(DATA)/mnist-scale-mnist.h5; \
	else \
	    code=$$?; [ $$code -eq 4 ] || exit $$code; \
	    echo "" >&2; \
	    echo "######################################################################" >&2; \
	    echo "## MNIST could not be had (no network?). Building the SAME protocol ##" >&2; \
	    echo "## from Debian's Fashion-MNIST instead: source = fashion-mnist.     ##" >&2; \
	    echo "######################################################################" >&2; \
	    if [ ! -d $(FASHION_DIR) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist; \
	    fi; \
	    $(BIN)/scale-datasets -v build mnist-scale --realisations 6 --source fashion-mnist \
	        --no-download --out $(DATA)/mnist-scale-fashion-mnist.h5 --overwrite || exit $$?; \
	    out=$(DATA)/mnist-scale-fashion-mnist.h5; \
	fi; \
	ln -sfn $$(basename $$out) $(DATA)/mnist-scale.h5 && \
	echo "$(DATA)/mnist-scale.h5 -> $$(basename $$out) (the name the README's quick start opens)" && \
	$(BIN)/scale-datasets verify $$out && \
	$(BIN)/scale-datasets info $$out && \
	$(BIN)/scale-datasets preview $$out --out $(DATA)/preview.png && \
	$(BIN)/python -c "from scale_datasets import MNISTScale; ds = MNISTScale('$$out', split='train', realisation=0); print(ds[0][0].shape, len(ds))"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest

# Also the tests marked slow.
test-all: lint
	$(BIN)/pytest -m "not gpu"

bench: install
	$(BIN)/python benchmarks/bench_build.py
	$(BIN)/python benchmarks/bench_loader.py
	$(BIN)/python benchmarks/bench_multires.py
	$(BIN)/python benchmarks/bench_dynamic.py
	$(BIN)/python benchmarks/bench_scaling.py
	$(BIN)/python benchmarks/bench_fourier.py
	$(BIN)/python benchmarks/bench_sesn.py
	$(BIN)/python benchmarks/bench_epoch.py
	$(BIN)/python benchmarks/bench_signals.py

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache .ruff_cache *.egg-info
