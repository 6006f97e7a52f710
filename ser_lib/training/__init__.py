"""Training: run settings, setup, the epochs, the run folder, and the classic baseline.

``config`` (:class:`TrainConfig`, the one place of every default) · ``setup`` (data, splits,
accelerator, optimiser, schedule) · ``loop`` (:class:`~ser_lib.training.loop.Trainer`: one step, one
epoch, validation) · ``run_folder`` (checkpoints, history, manifest, resume) · ``run`` (:func:`train`:
one split or K folds) · ``demo`` (the small model the notebooks use) · ``baseline`` (descriptors and
a linear classifier, for notebooks 01 and 02) · ``speed`` (throughput and memory of training steps, for
notebook 04 and ``benchmarks/train_speed.py``).
"""
from .config import TrainConfig
from .demo import demo_checkpoint
from .run import train

__all__ = ["TrainConfig", "demo_checkpoint", "train"]
