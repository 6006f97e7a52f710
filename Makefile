# ser-course: `make run` sets up .venv and runs the main job on the synthetic corpus;
# `make test` runs every test. See README.md.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
RUN_DIR ?= runs/synthetic
# the main job: the spectrogram-only model on the synthetic corpus (about 7 minutes on 2 CPU cores)
RUN_EPOCHS ?= 20

.PHONY: install run test clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "ser-course needs Python >= 3.10"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	touch $@

run: install
	$(PY) -m ser_lib synth
	$(PY) -m ser_lib index
	$(PY) -m ser_lib train --backbone none --epochs $(RUN_EPOCHS) --output_dir $(RUN_DIR)
	$(PY) -m ser_lib evaluate --model_path $(RUN_DIR)/best_model.pt

test: install
	$(PY) -m pytest

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
