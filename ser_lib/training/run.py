"""Training runs: ``python -m ser_lib train`` (notebook 04 runs the same :func:`train`).

One run trains on the training speakers of a split, selects the epoch with the best validation UAR
(early stopping) and reports the test speakers' metrics with that model; ``--folds K`` repeats this
over speaker-wise folds and summarises. :mod:`~ser_lib.training.setup` prepares the pieces,
:mod:`~ser_lib.training.loop` runs the epochs, :mod:`~ser_lib.training.run_folder` writes the
files. Randomness of epoch ``e`` is derived from ``(seed, e)``, so ``--resume`` after an
interruption replays the remaining epochs exactly as an uninterrupted run would.

Multi-GPU: ``accelerate launch -m ser_lib train ...`` (Hugging Face Accelerate handles the
processes, devices, mixed precision and gradient synchronisation).
"""
from __future__ import annotations

import contextlib
import copy
import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path

import torch
from tqdm import tqdm

from .. import paths
from ..data.augment import noisy_copy
from ..data.dataset import ClipDataset, EpochSampler, collate
from ..data.splits import Split
from ..errors import CheckpointError, TrainingError
from ..model import checkpoint
from ..model.backbone import EncoderStatesCache, load_backbone
from ..model.enrolment import TRAINING_ENROLMENTS
from ..model.normalizer import InputNormalizer
from ..model.ser_model import SERModel
from ..reports.summary import fold_summary, write_fold_summary
from ..seeding import seed_everything
from .config import TrainConfig
from .loop import Trainer
from .run_folder import (
    Progress,
    RunFolder,
    RunLock,
    check_output_dir,
    clear_run,
    git_commit,
    versions,
)
from .setup import (
    RunData,
    check_split,
    load_run_data,
    make_accelerator,
    out_of_memory_help,
    run_splits,
    scan_dataset,
)

log = logging.getLogger(__name__)


def train(config: TrainConfig) -> dict:
    """Train one split (or ``config.folds`` folds) and return the test metrics (a summary for folds).

    Everything that can be checked is checked before anything is written: the options, the device,
    the data, the splits, the output folder (never replaced without ``--overwrite``; ``--resume``
    with the same options), and the encoder (a model that cannot be fetched stops the run before any
    slow work). Then the folder is created and locked, and the audio is decoded once for all folds.
    A run that fails before its first epoch removes the folder it created.
    """
    config.validate()
    config = (replace(config, epochs=min(config.epochs, 2)) if config.quick else config).resolved()
    accelerator = make_accelerator(config)
    root, clips, labels = scan_dataset(config)
    split_list = run_splits(config, clips)
    for split in split_list:
        check_split(config, clips, labels, split)
    changes = check_output_dir(config)
    encoder = load_backbone(config.backbone) if config.has_backbone else None
    out = Path(config.output_dir).expanduser()
    main = accelerator.is_main_process  # with `accelerate launch`, one process owns the folder
    created = main and _make_folder(out)
    with RunLock(out) if main else contextlib.nullcontext():
        try:
            if main and not config.resume and (removed := clear_run(out)):  # --overwrite, or an untrained run
                log.info("replaced the earlier run in %s (%s)", out, ", ".join(removed))
            accelerator.wait_for_everyone()
            data = load_run_data(config, root, clips, labels)
            return _train_splits(config, data, split_list, out, accelerator, encoder, changes)
        except BaseException:
            if created and not any(out.rglob("last.pt")):  # nothing to resume: leave no empty run behind
                shutil.rmtree(out, ignore_errors=True)
            raise


def _make_folder(out: Path) -> bool:
    """Create the run folder; whether this call created it (so a failed start may remove it)."""
    try:
        out.mkdir(parents=True)
        return True
    except FileExistsError:
        return False


def _train_splits(config: TrainConfig, data: RunData, split_list: list[Split], out: Path, accelerator, encoder,
                  changes: dict) -> dict:
    results = []
    for split in split_list:
        run_dir = out / split.name if config.folds else out
        try:
            results.append(train_split(config, data, split, run_dir, accelerator, encoder, changes))
        except torch.OutOfMemoryError as err:
            raise TrainingError(out_of_memory_help(config, run_dir, accelerator.device)) from err
    if not config.folds:
        return results[0]
    summary = fold_summary(results)
    write_fold_summary(summary, out)
    return summary


def train_split(config: TrainConfig, data: RunData, split: Split, run_dir: Path, accelerator,
                encoder=None, changes: dict | None = None) -> dict:
    """Train on ``split.train``, select on ``split.val``, test on ``split.test``; write the run folder.

    With ``--resume`` a finished run is reported as it finished, an interrupted one continues from
    its ``last.pt``; ``changes`` (options a resume changed) are recorded in the manifest.
    """
    folder = RunFolder(run_dir)
    if config.resume:
        done = folder.finished_result()
        if done is not None:
            more = " (--epochs does not reopen a finished run)" if changes and "epochs" in changes else ""
            log.info("%s already finished; skipping%s: train it again with --overwrite", run_dir, more)
            return done
    folder.path.mkdir(parents=True, exist_ok=True)
    main = accelerator.is_main_process
    if main:
        folder.begin(_run_record(config, data, split, accelerator), changes)
    try:
        run = SplitRun(config, data, split, accelerator, encoder)
        if main:
            folder.update(**run.model_record())
        progress = run.resume(folder) if config.resume else Progress(window=config.select_window)
        run.fit(folder, progress)
        return run.finish(folder, progress)
    except BaseException as err:
        if main:
            folder.stop(err)
        raise


def _run_record(config: TrainConfig, data: RunData, split: Split, accelerator) -> dict:
    """What the manifest says about a run from its start: options, data, split, where and with what."""
    return {
        "config": config.to_dict(), "split": split.to_dict(), "dataset_root": data.root,
        "clips": {name: int(len(idx)) for name, idx in data.parts(split).items()}, "labels": data.labels,
        "skipped_files": [{"path": p, "reason": r} for p, r in data.failures], "seed": config.seed,
        "device": str(accelerator.device), "mixed_precision": accelerator.mixed_precision,
        "processes": accelerator.num_processes, "versions": versions(), "git_commit": git_commit(),
    }


class SplitRun:
    """Training on one split: the model, its input normaliser, its datasets and its trainer."""

    def __init__(self, config: TrainConfig, data: RunData, split: Split, accelerator, encoder=None):
        self.config, self.data, self.split, self.accelerator = config, data, split, accelerator
        self.parts = data.parts(split)
        check_split(config, data.clips, data.labels, split)  # again: some clips may not have decoded
        seed_everything(config.seed)
        self.model = SERModel(config.model_config(len(data.labels)),
                              encoder=copy.deepcopy(encoder) if encoder is not None else None)
        paths_ = data.clips["path"].tolist()
        train_idx = self.parts["train"]
        self.normalizer = InputNormalizer.fit(
            [data.waves[i] for i in train_idx], [paths_[i] for i in train_idx], mel_settings=self.model.config.mel,
            audio=config.audio_settings(), speaker_norm=config.speaker_norm, spectrogram=config.spectrogram,
            descriptors=config.descriptors, descriptor_set=config.descriptor_set,
            descriptor_version=config.descriptor_version,  # each corpus's statistics serve speaker normalisation
            corpora=data.clips["corpus"].iloc[train_idx].tolist() if config.corpus_stats and config.speaker_norm
            else None)
        speakers = data.clips["speaker"].tolist()
        inputs = self.normalizer.inputs(data.waves, paths_, speakers, corpora=data.clips["corpus"].tolist())
        variants = self._variants(paths_, speakers) if config.speaker_norm else []
        states_cache = self._states_cache()
        self.sets = {name: self._dataset(name, inputs, states_cache, variants) for name in ("train", "val", "test")
                     if name == "train" or len(self.parts[name])}
        train_set = self.sets["train"]
        balance_by = ([train_set.labels] if config.balance == "sampler" else []) + \
            ([train_set.clips["corpus"].to_numpy()] if config.corpus_balance else [])
        crop = config.audio_settings().max_samples
        lengths = [min(len(wave), crop) for wave in train_set.waves]
        sampler = EpochSampler(len(train_set), shuffle=True, seed=config.seed, balance_by=balance_by,
                               rank=accelerator.process_index, world=accelerator.num_processes,
                               lengths=lengths if config.bucket_by_length else None, batch_size=config.batch_size)
        self.loader = torch.utils.data.DataLoader(self.sets["train"], batch_size=config.batch_size, sampler=sampler,
                                                  collate_fn=collate, num_workers=config.num_workers)
        steps = min(2, len(self.loader)) if config.quick else len(self.loader)
        self.trainer = Trainer(self.model, config, accelerator, self.sets["train"].labels, len(data.labels), steps)

    def _states_cache(self) -> EncoderStatesCache | None:
        """With a frozen encoder: its layers of every clip, computed once and kept on disk."""
        backbone = self.model.backbone
        if backbone is None or self.config.freeze != "backbone" or not self.config.cache_encoder:
            return None
        cache = EncoderStatesCache(paths.cache_dir() / "encoder-states", backbone, self.config.audio_settings())
        backbone.to(self.accelerator.device)
        cache.fill(self.data.clips["path"].tolist(), self.data.waves, self.accelerator.device, self.config.progress)
        return cache

    def _variants(self, paths_: list[str], speakers: list) -> list[tuple[float, dict]]:
        """The training clips' inputs under other speaker statistics, with the rate each is used at: the
        cold start (``cold_start_rate``) and a few clips of the speaker (``enrolment_rate``, split evenly
        over :data:`~ser_lib.model.enrolment.TRAINING_ENROLMENTS`, drawn with the run's seed)."""
        config, waves = self.config, self.data.waves
        corpora = self.data.clips["corpus"].tolist()
        variants = []
        if config.cold_start_rate > 0:
            snr = config.augment_settings.snr_db  # noisy copies only matter to descriptors
            noisy = config.cold_start_noise if self.normalizer.descriptors is not None and snr else 0.0
            cold = self.normalizer.inputs(waves, paths_, speakers, adapt=False, corpora=corpora)
            variants.append((config.cold_start_rate * (1 - noisy), cold))
            if noisy > 0:  # copies of the training clips only: the variants serve training
                rows = self.parts["train"]
                tilt, sr = config.augment_settings.tilt_db, config.audio_settings().sample_rate
                copies = [noisy_copy(waves[i], paths_[i], snr, config.seed, tilt_db=tilt, sr=sr) for i in rows]
                tag = {"noisy_copy": [*snr, config.seed, *([tilt] if tilt else [])]}  # untilted: as before
                described = self.normalizer.inputs(copies, [paths_[i] for i in rows], [speakers[i] for i in rows],
                                                   adapt=False, tag=tag,
                                                   corpora=[corpora[i] for i in rows])
                alt = {key: values.copy() for key, values in cold.items()}
                for key, values in described.items():
                    alt[key][rows] = values
                variants.append((config.cold_start_rate * noisy, alt))
        if config.enrolment_rate > 0:
            draws = [replace(e, seed=config.seed + e.seed) for e in TRAINING_ENROLMENTS]
            for enrolment in draws:
                variants.append((config.enrolment_rate / len(draws), self.normalizer.inputs(
                    waves, paths_, speakers, enrolment=enrolment.draw(self.data.clips), corpora=corpora)))
        return variants

    def _dataset(self, name: str, inputs: dict, states_cache, variants: list) -> ClipDataset:
        idx, data = self.parts[name], self.data
        train = name == "train"
        return ClipDataset(data.clips.iloc[idx], [data.waves[i] for i in idx], data.targets()[idx],
                           self.config.audio_settings(), train=train, seed=self.config.seed,
                           augment=self.config.wave_augment(), states_cache=states_cache,
                           inputs={key: values[idx] for key, values in inputs.items()},
                           variants=[(rate, {key: values[idx] for key, values in alt.items()})
                                     for rate, alt in variants] if train else ())

    def payload(self, metrics: dict | None = None, extra: dict | None = None) -> dict:
        """The checkpoint of the current weights."""
        return checkpoint.payload(self.trainer.saved_model, labels=self.data.labels, audio=self.config.audio_settings(),
                                  normalizer=self.normalizer, split=self.split.to_dict(),
                                  train_config=self.config.to_dict(), metrics=metrics or {}, extra=extra)

    def resume(self, folder: RunFolder) -> Progress:
        """The progress of an interrupted run, with the trainer restored to its last epoch."""
        if not folder.last.exists():
            log.info("no last.pt in %s: starting from scratch", folder.path)
            return Progress(window=self.config.select_window)
        state = checkpoint.read(folder.last)  # validated; a checkpoint of the previous format is upgraded
        unsaved = "average_state_dict" if "average_state_dict" in state else "raw_state_dict"  # see Trainer.state_dict
        needed = ("optimizer", "scheduler", "history", "best") + (
            (unsaved, "average_updates") if self.trainer.average is not None else ())
        missing = [key for key in needed if key not in state]
        if missing:
            raise CheckpointError(f"{folder.last} holds no {', '.join(missing)}: it cannot continue a run. Start "
                                  f"again with --overwrite (or another --output_dir).")
        self.trainer.load_state_dict(state)
        progress = Progress.from_dict(state, self.config.select_window)
        log.info("resuming %s at epoch %d of %d", folder.path, progress.next_epoch + 1, self.config.epochs)
        return progress

    def fit(self, folder: RunFolder, progress: Progress) -> None:
        """Train the remaining epochs, validating and saving after each; stop early on a stale UAR."""
        config, main = self.config, self.accelerator.is_main_process
        bar = tqdm(range(progress.next_epoch, config.epochs), desc=f"training {self.split.name}", unit="epoch",
                   disable=not config.progress or not main, initial=progress.next_epoch, total=config.epochs)
        for epoch in bar:
            started = time.perf_counter()
            row = self.trainer.train_epoch(self.loader, epoch, lambda: _kept_message(folder, progress))
            if "val" in self.sets:
                row.update({f"val_{k}": v for k, v in self.trainer.evaluate(self.sets["val"]).items()})
            row.update(self.trainer.learning_rates(), seconds=time.perf_counter() - started)
            improved = progress.record(row)
            if main:
                val = {k: v for k, v in row.items() if k.startswith("val_")}
                folder.save_epoch(self.payload(), progress, self.trainer.state_dict(), improved, val)
            self.accelerator.wait_for_everyone()
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_uar=f"{row.get('val_uar', float('nan')):.3f}",
                            best=f"{_or_nan(progress.best_uar):.3f}@{progress.best_epoch + 1}")
            if main:
                (tqdm.write if config.progress else log.info)(_epoch_line(row, config.epochs))
            if config.patience and "val" in self.sets and progress.stale >= config.patience:
                log.info("early stopping: validation UAR has not improved for %d epochs", config.patience)
                break
        bar.close()

    def finish(self, folder: RunFolder, progress: Progress) -> dict:
        """Test the best epoch's model; record the test metrics in ``best_model.pt`` and the manifest."""
        best = checkpoint.read(folder.best)
        self.trainer.saved_model.load_state_dict(best["state_dict"])
        test = self.trainer.evaluate(self.sets["test"]) if "test" in self.sets else {}
        result = {"split": self.split.name, "test_speakers": list(self.split.test), "best_epoch": progress.best_epoch + 1,
                  "val_uar": progress.best_uar, **test}
        if self.accelerator.is_main_process:
            best["metrics"]["test"] = test
            checkpoint.save(best, folder.best)
            folder.update(status="finished", best_epoch=result["best_epoch"], val_uar=result["val_uar"],
                          epochs_run=len(progress.history), test_metrics=test)
        return result

    def model_record(self) -> dict:
        """The manifest's account of the model: its architecture and parameter counts."""
        model = self.trainer.unwrapped
        return {"model": model.config.to_dict() | {"backbone_config": None}, "parameters": model.parameter_counts()}


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value


def _kept_message(folder: RunFolder, progress: Progress) -> str:
    if not progress.history:
        return "No checkpoint was written yet."
    return (f"The last good checkpoints are kept in {folder.path} (last.pt: epoch {progress.next_epoch}, "
            f"best_model.pt). To train with other options, start again with --overwrite or another --output_dir.")


def _epoch_line(row: dict, epochs: int) -> str:
    text = f"epoch {row['epoch'] + 1:3d}/{epochs}  loss {row['train_loss']:.3f}  train acc {row['train_accuracy']:.3f}"
    if "val_uar" in row:
        text += f"  val UAR {row['val_uar']:.3f}  acc {row['val_accuracy']:.3f}  F1 {row['val_macro_f1']:.3f}"
    return text + f"  ({row['seconds']:.0f} s)"
