# Two entry points for a fresh machine: `make demo` and `make test`. Both build .venv on their own.
VENV ?= .venv
PY := $(VENV)/bin/python
# Exact versions only here; pyproject.toml keeps loose ranges. This torch build is on the local disk.
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: demo test test-fast fuzz mutate mutate-kd lint bench-mnist1d bench-objectives bench-overhead bench-scaling bench-torchdistill bench-continual bench-gpu clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/protege demo

# One pytest worker per core (pytest-xdist); each test runs on one torch thread (tests/conftest.py)
test: $(VENV)/.installed
	$(PY) -m pytest -q -n auto

test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -n auto -m "not slow"

# The hypothesis targets of tests/test_fuzz_inputs.py with 1,000 examples each (the suite runs 25).
fuzz: $(VENV)/.installed
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q tests/test_fuzz_inputs.py --hypothesis-show-statistics

# Mutation testing (issue 17): every group of tools/mutate.py, then the score per group. About an hour on 2 cores.
mutate: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[mutate]" $(TORCH)
	$(PY) tools/mutate.py

# The subset CI runs: objectives/kd.py (the soft-target loss, its closed-form gradient and fast kernel).
mutate-kd: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[mutate]" $(TORCH)
	$(PY) tools/mutate.py kd --min-score 90

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks tools
	$(VENV)/bin/ruff format --check src tests benchmarks tools

bench-mnist1d: $(VENV)/.installed
	$(PY) benchmarks/mnist1d_baselines.py

bench-objectives: $(VENV)/.installed
	$(PY) benchmarks/objectives.py --seeds 0 1 2

bench-overhead: $(VENV)/.installed
	$(PY) benchmarks/overhead.py

bench-scaling: $(VENV)/.installed
	$(PY) benchmarks/scaling.py

# torchdistill is a benchmark-only extra; the pinned torch keeps pip from swapping the build.
bench-torchdistill: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[bench]" $(TORCH)
	$(PY) benchmarks/vs_torchdistill.py

# Avalanche is a benchmark-only extra too. Its wheel ships a top-level `tests` package that would shadow
# this repository's tests/, so it is removed right after the install.
bench-continual: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[bench-continual]" $(TORCH)
	rm -rf "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/tests"
	$(PY) benchmarks/vs_avalanche.py --seeds 0 1 2

# On a machine with a GPU: timm ResNet-50 -> ResNet-18 throughput over precision, channels_last and compile.
bench-gpu: $(VENV)/.installed
	$(PY) benchmarks/gpu_throughput.py

clean:
	rm -rf $(VENV) runs
