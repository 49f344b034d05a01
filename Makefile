# Two commands: `make book` and `make test`. Each creates or reuses the project-local virtual
# environment .venv and installs everything it needs.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PROFILE ?= cpu
SHARED_BUSI := $(abspath ../shared/data/BUSI/Dataset_BUSI_with_GT)
SHARED_BUSBRA := $(abspath ../shared/data/BUS-BRA)
ifeq ($(BUSI_DATA),)
  ifneq ($(wildcard $(SHARED_BUSI)),)
    export BUSI_DATA := $(SHARED_BUSI)
  endif
endif
ifeq ($(BUSBRA_DATA),)
  ifneq ($(wildcard $(SHARED_BUSBRA)),)
    export BUSBRA_DATA := $(SHARED_BUSBRA)
  endif
endif
export TF_CPP_MIN_LOG_LEVEL := 2
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: venv test test-fast book results bench model nbval-refresh clean

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.10-3.12); set PYTHON=..."; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

venv: $(VENV)/.installed

test: venv
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-fast: venv
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow" $(PYTEST_ARGS)

book: venv
	$(PY) -m busi_lib.book.build --profile $(PROFILE)

# Train every experiment of the book that is not recorded yet (resumable; HOURS=2 makes a piece
# that starts no new fold after two hours). `make book` then only renders the records.
results: venv
	$(PY) -m busi_lib.experiments.crossval --profile $(PROFILE) --experiment book $(if $(HOURS),--hours $(HOURS))

# Release the five fold models of robust_grouped_e60 (config.RELEASED_EXPERIMENT; trained by
# `make results`, or rebuilt by tools/rebuild_models.sh, kept in
# results/$(PROFILE)/robust_grouped_e60/models/) as models/robust_grouped_e60_$(PROFILE)/ with its
# model card models/README.md: weights only, float16 when that moves out-of-fold Dice and AUC by
# < 0.005, calibration fitted on the out-of-fold predictions, BUS-BRA evaluated, sha256 of every file.
model: venv
	$(PY) -m busi_lib.serve.release --profile $(PROFILE) $(RELEASE_ARGS)

bench: venv
	$(PY) -m busi_lib.experiments.bench --out results/bench/bench.jsonl $(BENCH_ARGS)

nbval-refresh: venv
	$(PY) -m busi_lib.book.build --profile smoke --refresh-nbval

clean:
	rm -rf _build .pytest_cache
