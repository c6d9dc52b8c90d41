# rmforge: `make run` (set up + the main job on the embedded defaults), `make test` (set up + all tests).
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VERL_STAMP := .venvs/verl/.ready
LLAMA_VERSION := 0.3.36
LLAMA_STAMP := $(VENV)/.llama-cpp-$(LLAMA_VERSION)
# llama.cpp built for portable x86-64 (AVX2): the native build uses AMX tiles and segfaults on
# machines whose kernel does not grant them. --no-cache-dir so a cached native wheel is never reused.
# LLAVA_BUILD=OFF: the multimodal library is loaded only by image chat handlers, which rmforge never
# uses; skipping it shortens the compile.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAVA_BUILD=OFF
# Not ours to show: pip's notes about index locations this machine's pip config names but lacks,
# and setuptools' generic notice that an editable install is editable.
PIP_NOTES := sed -u -e '/is ignored: it is neither a file nor a directory/d' \
	-e '/BuildBackendWarning: Editable installation/,/with strategy, WheelFile/d'

export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export RMFORGE_DATA_DIR ?= $(CURDIR)/data
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

.PHONY: install run test test-fast ui validate lint clean browser

install: $(STAMP)

# torch first and pinned: any range pulls a multi-GB CUDA build. Re-runs only when pyproject changes.
$(STAMP): pyproject.toml $(LLAMA_STAMP)
	@echo "installing torch (CPU) and rmforge into $(VENV) ..."
	@$(BIN)/python -m pip install --quiet torch==2.13.0 2>&1 | $(PIP_NOTES)
	@$(BIN)/python -m pip install --quiet -e '.[dev]' 2>&1 | $(PIP_NOTES)
	@touch $(STAMP)

# llama-cpp-python's own dependencies go in first because it is built with --no-deps.
$(LLAMA_STAMP):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip 2>&1 | $(PIP_NOTES)
	@$(BIN)/python -m pip install --quiet numpy diskcache jinja2 typing-extensions 2>&1 | $(PIP_NOTES)
	@echo "compiling llama.cpp (llama-cpp-python $(LLAMA_VERSION), portable AVX2; a few minutes) ..."
	@CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/python -m pip install --quiet \
		--no-cache-dir --no-deps --force-reinstall llama-cpp-python==$(LLAMA_VERSION) 2>&1 | $(PIP_NOTES)
	@touch $(LLAMA_STAMP)

run: install
	$(BIN)/rmforge run

test: validate lint $(VERL_STAMP) browser
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=15

# The edit-test loop: lint and every test that needs none of the llama.cpp server, the verl venv or
# the browser, and is not marked slow (markers in pyproject.toml). `make test` runs everything.
FAST_TESTS := not slow and not embedded_llm and not verl and not browser
test-fast: install lint
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "$(FAST_TESTS)"

# Headless Chromium for tests/test_ui_browser.py: Debian's package (Playwright cannot download its
# own browser here; the playwright client comes with the dev extras). Installed once, as root.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser: install
	@test -x /usr/bin/chromium || { echo "installing Debian's chromium for the browser test ..."; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
		--no-install-recommends chromium 2>&1 >/dev/null | sed -e '/^debconf: delaying package configuration/d'; }

# verl 0.9.1 in its own venv (its antlr4 pin breaks Dagster): config composition tests run there.
$(VERL_STAMP): training/setup_verl_venv.sh
	@bash training/setup_verl_venv.sh 2>&1 | $(PIP_NOTES)
	@touch $(VERL_STAMP)

# Validate the code location and show its schedules and sensors.
validate: install
	$(BIN)/dagster definitions validate -w workspace.yaml
	$(BIN)/dagster schedule list -w workspace.yaml
	$(BIN)/dagster sensor list -w workspace.yaml

lint: install
	$(BIN)/ruff check .

# `dagster dev` ignores SIGINT when backgrounded; setsid + default INT lets Ctrl-C and kill -TERM stop it.
UI_PORT ?= 3000
ui: install
	setsid env --default-signal=INT $(BIN)/rmforge ui --port $(UI_PORT)

clean:
	rm -rf data .dagster_home/storage .dagster_home/history .dagster_home/schedules .dagster_home/logs
