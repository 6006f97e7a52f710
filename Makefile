# ser-course. `make run`: set up .venv and run the main job on the synthetic corpus;
# `make test`: every test, notebooks included. See README.md.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

# the main job: the default model (TrainConfig: the spectrogram model, no audio backbone) on the synthetic
# corpus, 20 epochs instead of the default 50 (about 9 minutes on 2 CPU cores). Run again, it continues
# an interrupted run (--resume) or reports the finished one, and rewrites its evaluation report.
RUN_DIR    ?= runs/synthetic
RUN_EPOCHS ?= 20

# `make train` / `make evaluate`: notebooks 04 and 05 run headlessly by papermill. Options left empty keep
# TrainConfig's defaults (`python -m ser_lib train -h` lists them): 50 epochs, all 8 emotions, the
# spectrogram model; e.g. `make train DATASET_ROOT=dataset/RAVDESS FOLDS=5 BACKBONE=facebook/wav2vec2-base`.
# Run again with the same RUN, it continues an interrupted run or reports the finished one (--resume).
RUN          ?= runs/train
DATASET_ROOT ?=
EPOCHS       ?=
SUBSET       ?=
BACKBONE     ?=
FREEZE       ?=
BATCH_SIZE   ?=
FOLDS        ?=
PAPERMILL    := $(PY) -m papermill -k python3 --cwd notebooks

.PHONY: install run test train evaluate lab figures strip clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "ser-course needs Python >= 3.10"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	# the pretrained voice encoder's weights ship in resemblyzer's wheel (the default model's descriptors, the voice
	# baseline; without it their first use downloads the wheel); ser_lib reads the file itself, so the
	# package's own requirements are not needed
	$(PY) -m pip install --no-deps 'resemblyzer==0.1.4'
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (ser-course)"
	touch $@

run: install
	$(PY) -m ser_lib synth
	$(PY) -m ser_lib index
	$(PY) -m ser_lib train --epochs $(RUN_EPOCHS) --output_dir $(RUN_DIR) --resume
	$(PY) -m ser_lib evaluate --model_path $(RUN_DIR)/best_model.pt --overwrite

test: install
	$(PY) -m pytest

train: install
	mkdir -p $(RUN)
	$(PAPERMILL) notebooks/04_training.ipynb $(RUN)/04_training.ipynb -p output_dir $(abspath $(RUN)) \
		-p resume True -p overwrite False -p epochs $(or $(EPOCHS),None) $(if $(SUBSET),-p emotion_subset $(SUBSET)) \
		$(if $(BACKBONE),-p backbone $(BACKBONE)) $(if $(FREEZE),-p freeze $(FREEZE)) \
		$(if $(BATCH_SIZE),-p batch_size $(BATCH_SIZE)) $(if $(FOLDS),-p folds $(FOLDS)) \
		$(if $(DATASET_ROOT),-p dataset_root $(abspath $(DATASET_ROOT)))
	@echo "run saved in $(RUN) (executed notebook: $(RUN)/04_training.ipynb)"

evaluate: install
	$(PAPERMILL) notebooks/05_evaluation.ipynb $(RUN)/05_evaluation.ipynb -p run_dir $(abspath $(RUN)) \
		$(if $(DATASET_ROOT),-p dataset ravdess=$(abspath $(DATASET_ROOT)))
	@echo "report: $(RUN)/evaluation/report.md (executed notebook: $(RUN)/05_evaluation.ipynb)"

lab: install
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

# figures/ from ../shared/data/ravdess16k (or DATASET_ROOT; the synthetic corpus when absent) and a 5-fold run
figures: install
	$(PY) scripts/make_figures.py $(if $(DATASET_ROOT),--dataset_root $(DATASET_ROOT))

strip: install
	$(PY) scripts/strip_notebooks.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
