"""Training: speaker-independent splits, augmentation, mixed precision, AdamW + cosine, resume.

``python -m ser_lib train`` (notebook 04 runs the same function). One run trains on the training
actors, selects the epoch with the best validation UAR (early stopping), and reports the test
actors' metrics with that model. ``--folds K`` repeats this over actor-wise folds and summarises.

The run folder holds ``best_model.pt`` (weights + config + labels + split + normalisation +
metrics, loadable with ``torch.load(weights_only=True)``), ``last.pt`` (everything needed to resume:
optimizer, scheduler, scaler, epoch, history), ``history.csv`` and ``manifest.json``.
Randomness of epoch ``e`` is derived from ``(seed, e)``, so ``--resume`` after an interruption
replays the remaining epochs exactly as an uninterrupted run would.

Multi-GPU: ``accelerate launch -m ser_lib train ...`` (Hugging Face Accelerate handles the
processes, devices, mixed precision and gradient synchronisation).
"""
from __future__ import annotations

import copy
import csv
import dataclasses
import json
import logging
import math
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from . import checkpoint, normalization, paths, ravdess, splits
from .augment import SpecAugment, WaveAugment
from .data import AudioSettings, ClipDataset, EncoderStatesCache, EpochSampler, collate, load_clips, model_inputs
from .devices import resolve_device
from .errors import ConfigError, DatasetError, SplitError, TrainingError
from .metrics import classification_metrics
from .model import ModelConfig, SERModel, load_backbone
from .seeding import derive_seed, seed_everything

log = logging.getLogger(__name__)

BALANCE_CHOICES = ("loss", "sampler", "none")
PRECISION_CHOICES = ("auto", "no", "fp16", "bf16")


@dataclass
class TrainConfig:
    """All options of a training run (the command line exposes each field)."""

    dataset_root: str | None = None          # None: the built-in synthetic corpus
    output_dir: str = "runs/latest"
    emotion_subset: str = "all"              # all (8) | basic6 | basic4
    batch_size: int = 16
    epochs: int = 50
    learning_rate: float = 3e-5              # pretrained encoder
    head_lr: float = 1e-3                    # everything new (CNN, fusion, context, pooling, heads)
    weight_decay: float = 0.01
    warmup: float = 0.05                     # fraction of all optimisation steps
    gender_weight: float = 0.3               # weight of the auxiliary gender loss (0: off)
    max_seconds: float = 3.0                 # crop length
    trim_db: float | None = 40.0             # silence trimming threshold (None: off)
    device: str = "auto"                     # auto | cpu | cuda | mps
    backbone: str = "facebook/wav2vec2-base"  # hub name, local folder, or "none"
    freeze: str = "feature_encoder"          # none | feature_encoder | backbone
    spectrogram: bool = True                 # the log-mel CNN branch
    d_model: int = 192
    cnn_channels: tuple[int, ...] = (32, 64, 128)
    context_layers: int = 2
    dropout: float = 0.2
    balance: str = "loss"                    # class-balanced loss | sampler | none
    label_smoothing: float = 0.1
    augment: bool = True                     # waveform augmentation
    spec_augment: bool = True                # SpecAugment on the log-mel branch
    patience: int = 10                       # early stopping on validation UAR (0: off)
    grad_clip: float = 1.0
    folds: int | None = None                 # actor-wise K-fold instead of the fixed split
    test_actors: tuple[int, ...] | None = None   # fixed split (default 21-24)
    val_actors: tuple[int, ...] | None = None    # fixed split (default 19-20)
    seed: int = 0
    resume: bool = False
    num_workers: int = 0
    quick: bool = False                      # two batches per epoch, two epochs: a smoke run
    mixed_precision: str = "auto"            # auto: bf16 where supported, fp16 on other GPUs, off on CPU
    cache_encoder: bool = True               # with --freeze backbone: cache encoder layers on disk
    speaker_norm: bool = True                # normalise inputs with each speaker's own (unlabelled) audio
    descriptors: bool = True                 # feed clip descriptors (pitch, energy, MFCC statistics) too
    progress: bool = True

    def validate(self) -> None:
        ravdess.emotion_codes(self.emotion_subset)
        checks = [
            (self.batch_size >= 1, "--batch_size must be at least 1"),
            (self.epochs >= 1, "--epochs must be at least 1"),
            (self.learning_rate > 0 and self.head_lr > 0, "learning rates must be positive"),
            (0 <= self.warmup < 1, "--warmup is a fraction of all steps, in [0, 1)"),
            (self.max_seconds > 0.5, "--max_seconds must be above 0.5"),
            (self.balance in BALANCE_CHOICES, f"--balance must be one of {', '.join(BALANCE_CHOICES)}"),
            (self.mixed_precision in PRECISION_CHOICES,
             f"--mixed_precision must be one of {', '.join(PRECISION_CHOICES)}"),
            (self.gender_weight >= 0, "--gender_weight must not be negative"),
            (self.folds is None or self.folds >= 2, "--folds needs at least 2"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def model_config(self, num_emotions: int) -> ModelConfig:
        return ModelConfig(
            num_emotions=num_emotions, backbone=None if self.backbone in ("", "none", None) else self.backbone,
            freeze=self.freeze, spectrogram=self.spectrogram, d_model=self.d_model,
            cnn_channels=tuple(self.cnn_channels),
            context_layers=self.context_layers, dropout=self.dropout, gender_head=self.gender_weight > 0,
            descriptor_dim=len(normalization.descriptor_names()) if self.descriptors else 0,
        )

    def audio_settings(self) -> AudioSettings:
        return AudioSettings(trim_db=self.trim_db, max_seconds=self.max_seconds)

    def to_dict(self) -> dict:
        data = asdict(self)
        for key in ("test_actors", "val_actors", "cnn_channels"):
            if data[key] is not None:
                data[key] = list(data[key])
        return data


@dataclass
class RunData:
    """The clips of a run and their decoded audio, shared by the folds."""

    clips: pd.DataFrame
    waves: list[np.ndarray]
    labels: list[str]
    codes: list[int]
    root: str
    failures: list[tuple[str, str]] = field(default_factory=list)

    def targets(self) -> np.ndarray:
        lookup = {c: i for i, c in enumerate(self.codes)}
        return self.clips["emotion_code"].map(lookup).to_numpy()


# ----------------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------------
def train(config: TrainConfig) -> dict:
    """Train one split (or ``config.folds`` folds) and return the test metrics (a summary for folds)."""
    config.validate()
    if config.quick:
        config = dataclasses.replace(config, epochs=min(config.epochs, 2))
    out = _prepare_output_dir(config.output_dir)
    accelerator = _make_accelerator(config)
    labels = ravdess.emotion_names(config.emotion_subset)
    # The encoder is loaded first: a model that cannot be fetched stops the run before any work.
    template = None
    model_config = config.model_config(len(labels))
    if model_config.has_backbone:
        template = load_backbone(model_config.backbone)
    data = load_run_data(config)
    actors = ravdess.actors_of(data.clips)
    if config.folds:
        run_splits = splits.kfold_splits(actors, config.folds)
    else:
        run_splits = [splits.fixed_split(actors, config.test_actors or splits.DEFAULT_TEST_ACTORS,
                                         splits.DEFAULT_VAL_ACTORS if config.val_actors is None else config.val_actors)]
    results = []
    for split in run_splits:
        run_dir = out / split.name if config.folds else out
        try:
            results.append(train_split(config, data, split, run_dir, accelerator, template))
        except torch.OutOfMemoryError as err:
            raise TrainingError(_out_of_memory_help(config, run_dir, accelerator.device)) from err
    if not config.folds:
        return results[0]
    summary = summarize_folds(results, out)
    return summary


def _finished_result(manifest: dict, out: Path) -> dict:
    """The result of a finished run folder, as :func:`train_split` returned it (for ``--resume``)."""
    val_uar = manifest.get("val_uar")
    if val_uar is None and (out / "history.csv").exists():  # folders written before val_uar was recorded
        history = pd.read_csv(out / "history.csv")
        best = history[history["epoch"] == manifest["best_epoch"] - 1]
        if "val_uar" in history and len(best):
            val_uar = float(best["val_uar"].iloc[0])
    return {"split": manifest["split"]["name"], "best_epoch": manifest["best_epoch"], "val_uar": val_uar,
            **manifest["test_metrics"]}


def _out_of_memory_help(config: TrainConfig, run_dir: Path, device) -> str:
    """What to change when the accelerator runs out of memory (the common fixes, most effective first)."""
    fixes = [f"--batch_size {max(1, config.batch_size // 2)} (memory grows with the batch)",
             f"--max_seconds {max(1.0, config.max_seconds - 1):g} (shorter crops)"]
    if config.backbone != "none" and config.freeze != "backbone":
        fixes.append("--freeze backbone (no encoder gradients; its outputs are cached after the first pass)")
    if config.mixed_precision == "no":
        fixes.append("--mixed_precision auto (bf16/fp16 halves activation memory)")
    return (f"out of memory on {device}. Finished epochs, if any, are kept in {run_dir} (last.pt). "
            f"Train again with one of: " + "; ".join(fixes) + ". Close other programs using the GPU "
            f"(nvidia-smi lists them).")


DEMO_VERSION = 2


def demo_checkpoint(progress: bool = True) -> Path:
    """A small spectrogram-only model of the synthetic corpus, trained once into the cache (~2 min
    on a CPU); notebooks 03, 05 and 06 use it when no model of your own is given."""
    from .synth import SYNTH_VERSION

    out = paths.cache_dir() / f"demo-model-v{DEMO_VERSION}-synthetic-v{SYNTH_VERSION}"
    manifest = out / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text()).get("status") == "finished":
        return out / "best_model.pt"
    train(TrainConfig(output_dir=str(out), backbone="none", epochs=6, patience=0, progress=progress))
    return out / "best_model.pt"


def load_run_data(config: TrainConfig) -> RunData:
    """Index the dataset (the synthetic corpus when none is given), select the subset, decode audio."""
    root = config.dataset_root or str(paths.synthetic_root(progress=config.progress))
    result = ravdess.scan(root)
    if result.problems:
        log.warning("%d files of %s are not used (run `python -m ser_lib index --dataset_root %s` for the list)",
                    len(result.problems), root, root)
    clips = ravdess.select_emotions(result.clips, config.emotion_subset)
    codes = list(ravdess.emotion_codes(config.emotion_subset))
    waves, failures = load_clips(clips["path"].tolist(), config.audio_settings(), progress=config.progress)
    keep = [w is not None for w in waves]
    clips = clips[keep].reset_index(drop=True)
    waves = [w for w in waves if w is not None]
    if clips.empty:
        raise DatasetError(f"no clip of {root} could be loaded")
    return RunData(clips, waves, ravdess.emotion_names(config.emotion_subset), codes, str(root), failures)


# ----------------------------------------------------------------------------------------------
# One split
# ----------------------------------------------------------------------------------------------
def train_split(config: TrainConfig, data: RunData, split: splits.Split, out: Path, accelerator,
                encoder_template=None) -> dict:
    """Train on ``split.train``, select on ``split.val``, test on ``split.test``; write the run folder."""
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    if config.resume and manifest_path.exists():
        done = json.loads(manifest_path.read_text())
        if done.get("status") == "finished":
            log.info("%s already finished; skipping (delete it to train again)", out)
            return _finished_result(done, out)
    started = time.time()
    settings = config.audio_settings()
    targets = data.targets()
    parts = {name: np.flatnonzero(data.clips["actor"].isin(getattr(split, name)).to_numpy())
             for name in ("train", "val", "test")}
    _check_split(config, data, split, parts, targets)

    seed_everything(config.seed)
    model_config = config.model_config(len(data.labels))
    model = SERModel(model_config, encoder=copy.deepcopy(encoder_template) if encoder_template is not None else None)
    clip_paths, actors = data.clips["path"].tolist(), data.clips["actor"].tolist()
    norm_info = normalization.fit_statistics(model, data.waves, clip_paths, parts["train"], settings,
                                             config.speaker_norm)
    extras = normalization.model_extras(model, norm_info, data.waves, clip_paths, actors, settings)

    states_cache = None
    if model.backbone is not None and config.freeze == "backbone" and config.cache_encoder:
        states_cache = EncoderStatesCache(paths.cache_dir() / "encoder-states", model.backbone, settings)
        model.backbone.to(accelerator.device)
        states_cache.fill(data.clips["path"].tolist(), data.waves, settings, accelerator.device, config.progress)

    def dataset(name: str, train: bool) -> ClipDataset:
        idx = parts[name]
        return ClipDataset(data.clips.iloc[idx], [data.waves[i] for i in idx], targets[idx], settings,
                           train=train, seed=config.seed, augment=WaveAugment() if config.augment else None,
                           states_cache=states_cache, extras={k: v[idx] for k, v in extras.items()})

    train_set = dataset("train", True)
    sampler = EpochSampler(train_set.labels, shuffle=True, seed=config.seed, balanced=config.balance == "sampler",
                           rank=accelerator.process_index, world=accelerator.num_processes)
    loader = torch.utils.data.DataLoader(train_set, batch_size=config.batch_size, sampler=sampler,
                                         collate_fn=collate, num_workers=config.num_workers, drop_last=False)
    eval_sets = {name: dataset(name, False) for name in ("val", "test") if len(parts[name])}

    steps_per_epoch = min(2, len(loader)) if config.quick else len(loader)
    optimizer = _optimizer(model, config)
    total_steps = steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _cosine_with_warmup(total_steps, config.warmup))
    model, optimizer = accelerator.prepare(model, optimizer)
    weights = _class_weights(train_set.labels, len(data.labels)) if config.balance == "loss" else None
    emotion_loss = torch.nn.CrossEntropyLoss(weight=None if weights is None else weights.to(accelerator.device),
                                             label_smoothing=config.label_smoothing)
    gender_loss = torch.nn.CrossEntropyLoss()
    spec_augment = SpecAugment() if config.spec_augment else None

    history: list[dict] = []
    best = {"uar": -1.0, "epoch": -1}
    start_epoch = 0
    last_path = out / "last.pt"
    if config.resume and last_path.exists():
        state = torch.load(last_path, map_location="cpu", weights_only=True)
        accelerator.unwrap_model(model).load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if accelerator.scaler is not None and state.get("scaler"):
            accelerator.scaler.load_state_dict(state["scaler"])
        history, best, start_epoch = state["history"], state["best"], int(state["epoch"]) + 1
        log.info("resuming %s at epoch %d of %d", out, start_epoch + 1, config.epochs)
    elif config.resume:
        log.info("no last.pt in %s: starting from scratch", out)

    checkpoint_info = dict(labels=data.labels, emotion_codes=data.codes, emotion_subset=config.emotion_subset,
                           split=split.to_dict(), audio=settings, train_config=config.to_dict(),
                           normalization=norm_info)
    bar = tqdm(range(start_epoch, config.epochs), desc=f"training {split.name}", unit="epoch",
               disable=not config.progress or not accelerator.is_main_process, initial=start_epoch,
               total=config.epochs)
    stale = sum(1 for h in history if h["epoch"] > best["epoch"])
    for epoch in bar:
        t0 = time.perf_counter()
        seed_everything(derive_seed(config.seed, epoch))
        sampler.set_epoch(epoch)
        train_set.set_epoch(epoch)
        generator = torch.Generator().manual_seed(derive_seed(config.seed, epoch, 1))
        model.train()
        sums = {"loss": 0.0, "emotion": 0.0, "gender": 0.0, "correct": 0, "n": 0}
        steps = tqdm(loader, total=steps_per_epoch, desc=f"epoch {epoch + 1}", leave=False, unit="batch",
                     disable=not config.progress or not accelerator.is_main_process)
        for step, batch in enumerate(steps):
            if step >= steps_per_epoch:
                break
            batch = {k: v.to(accelerator.device) for k, v in batch.items()}
            out_ = model(batch["wave"], batch["lengths"],
                         spec_augment=(lambda s, n: spec_augment(s, n, generator)) if spec_augment else None,
                         **model_inputs(batch, accelerator.device))
            loss_e = emotion_loss(out_.emotion_logits.float(), batch["emotion"])
            loss = loss_e
            loss_g = torch.zeros((), device=loss.device)
            if out_.gender_logits is not None:
                loss_g = gender_loss(out_.gender_logits.float(), batch["gender"])
                loss = loss + config.gender_weight * loss_g
            if not torch.isfinite(loss):
                kept = (f"The last good checkpoints are kept in {out} (last.pt: epoch {epoch}, best_model.pt); "
                        f"after changing the options, continue with --resume." if history else
                        "No checkpoint was written yet.")
                raise TrainingError(
                    f"the loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}. {kept} "
                    f"Check the inputs for NaN, lower --learning_rate / --head_lr, or use --mixed_precision no."
                )
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            if config.grad_clip:
                accelerator.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            if not accelerator.optimizer_step_was_skipped:
                scheduler.step()
            n = len(batch["emotion"])
            sums["loss"] += loss.item() * n
            sums["emotion"] += loss_e.item() * n
            sums["gender"] += loss_g.item() * n
            sums["correct"] += int((out_.emotion_logits.argmax(-1) == batch["emotion"]).sum())
            sums["n"] += n
            steps.set_postfix(loss=f"{sums['loss'] / sums['n']:.3f}")
        steps.close()

        row = {"epoch": epoch, "train_loss": sums["loss"] / sums["n"],
               "train_emotion_loss": sums["emotion"] / sums["n"], "train_gender_loss": sums["gender"] / sums["n"],
               "train_accuracy": sums["correct"] / sums["n"]}
        if "val" in eval_sets:
            val = evaluate_dataset(model, eval_sets["val"], config, accelerator)
            row.update({f"val_{k}": v for k, v in val.items()})
        row["lr_heads"] = optimizer.param_groups[-1]["lr"]
        row["lr_backbone"] = optimizer.param_groups[0]["lr"] if model_config.has_backbone else float("nan")
        row["seconds"] = time.perf_counter() - t0
        history.append(row)

        score = row.get("val_uar", float(epoch))  # without validation actors the last epoch is kept
        unwrapped = accelerator.unwrap_model(model)
        if accelerator.is_main_process:
            if score > best["uar"]:
                best = {"uar": float(score), "epoch": epoch}
                stale = 0
                metrics = {"epoch": epoch, **{k: v for k, v in row.items() if k.startswith("val_")}}
                checkpoint.save(checkpoint.checkpoint_payload(unwrapped, metrics=metrics, **checkpoint_info),
                                out / "best_model.pt")
            else:
                stale += 1
            _write_history(history, out / "history.csv")
            last = checkpoint.checkpoint_payload(unwrapped, metrics={"epoch": epoch}, **checkpoint_info, extra={
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": accelerator.scaler.state_dict() if accelerator.scaler is not None else None,
                "epoch": epoch, "history": history, "best": best,
            })
            checkpoint.save(last, last_path)
        accelerator.wait_for_everyone()
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_uar=f"{row.get('val_uar', float('nan')):.3f}",
                        best=f"{best['uar']:.3f}@{best['epoch'] + 1}")
        if accelerator.is_main_process:
            if config.progress:
                tqdm.write(_epoch_line(row, config.epochs))
            else:
                log.info(_epoch_line(row, config.epochs))
        if config.patience and "val" in eval_sets and stale >= config.patience:
            log.info("early stopping: validation UAR has not improved for %d epochs", config.patience)
            break
    bar.close()

    best_ckpt = checkpoint.read(out / "best_model.pt")
    accelerator.unwrap_model(model).load_state_dict(best_ckpt["state_dict"])
    test = evaluate_dataset(model, eval_sets["test"], config, accelerator) if "test" in eval_sets else {}
    result = {"split": split.name, "best_epoch": best["epoch"] + 1, "val_uar": best["uar"], **test}
    if accelerator.is_main_process:
        best_ckpt["metrics"]["test"] = test
        checkpoint.save(best_ckpt, out / "best_model.pt")
        manifest = {
            "status": "finished",
            "config": config.to_dict(),
            "model": asdict(model_config) | {"backbone_config": None},
            "parameters": accelerator.unwrap_model(model).parameter_counts(),
            "split": split.to_dict(),
            "dataset_root": data.root,
            "clips": {name: int(len(idx)) for name, idx in parts.items()},
            "labels": data.labels,
            "skipped_files": [{"path": p, "reason": r} for p, r in data.failures],
            "best_epoch": best["epoch"] + 1,
            "val_uar": result["val_uar"],
            "epochs_run": len(history),
            "test_metrics": test,
            "seed": config.seed,
            "device": str(accelerator.device),
            "mixed_precision": accelerator.mixed_precision,
            "processes": accelerator.num_processes,
            "versions": _versions(),
            "git_commit": _git_commit(),
            "wall_seconds": round(time.time() - started, 1),
        }
        manifest_path.write_text(json.dumps(manifest, indent=2, default=str))
    return result


def evaluate_dataset(model, dataset: ClipDataset, config: TrainConfig, accelerator) -> dict:
    """Loss (plain cross-entropy), accuracy, UAR, macro-F1 and gender accuracy on ``dataset``."""
    out = predict_dataset(model, dataset, config.batch_size, accelerator.device, config.num_workers,
                          max_batches=2 if config.quick else None)
    y, probs = out["emotion"], out["probs"]
    metrics = classification_metrics(y, probs.argmax(1), probs.shape[1])
    metrics["loss"] = float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0))))
    if out["gender_probs"] is not None:
        metrics["gender_accuracy"] = float((out["gender_probs"].argmax(1) == out["gender"]).mean())
    return metrics


@torch.no_grad()
def predict_dataset(model, dataset: ClipDataset, batch_size: int, device, num_workers: int = 0,
                    max_batches: int | None = None, progress: bool = False) -> dict[str, np.ndarray]:
    """Probabilities for every clip of ``dataset`` (in dataset order)."""
    was_training = model.training
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate,
                                         num_workers=num_workers)
    probs, genders, emotion, gender, index = [], [], [], [], []
    for b, batch in enumerate(tqdm(loader, desc="predicting", unit="batch", leave=False, disable=not progress)):
        if max_batches is not None and b >= max_batches:
            break
        out = model(batch["wave"].to(device), batch["lengths"].to(device), **model_inputs(batch, device))
        probs.append(torch.softmax(out.emotion_logits.float(), -1).cpu().numpy())
        if out.gender_logits is not None:
            genders.append(torch.softmax(out.gender_logits.float(), -1).cpu().numpy())
        emotion.append(batch["emotion"].numpy())
        gender.append(batch["gender"].numpy())
        index.append(batch["index"].numpy())
    model.train(was_training)
    return {"probs": np.concatenate(probs), "gender_probs": np.concatenate(genders) if genders else None,
            "emotion": np.concatenate(emotion), "gender": np.concatenate(gender), "index": np.concatenate(index)}


# ----------------------------------------------------------------------------------------------
# Pieces
# ----------------------------------------------------------------------------------------------
def _check_split(config: TrainConfig, data: RunData, split: splits.Split, parts: dict, targets: np.ndarray) -> None:
    train_targets = targets[parts["train"]]
    missing = [data.labels[k] for k in range(len(data.labels)) if not np.any(train_targets == k)]
    if missing:
        raise SplitError(
            f"{split.name}: no training clips for {', '.join(missing)} among actors "
            f"{', '.join(f'{a:02d}' for a in split.train)} (subset {config.emotion_subset}); "
            f"choose another --emotion_subset or other actors"
        )
    if not len(parts["test"]):
        raise SplitError(f"{split.name}: the test actors have no clips in this dataset")
    if config.batch_size > len(parts["train"]):
        raise ConfigError(f"--batch_size {config.batch_size} is larger than the {len(parts['train'])} training "
                          f"clips; use at most {len(parts['train'])}")


def _optimizer(model: SERModel, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with separate learning rates; no weight decay on biases, norms and layer weights."""
    groups = []
    for name, params, lr in (("backbone", model.parameter_groups()["backbone"], config.learning_rate),
                             ("heads", model.parameter_groups()["heads"], config.head_lr)):
        if not params and name == "backbone":
            continue
        ids = {id(p) for p in params}
        decay = [p for n, p in model.named_parameters() if id(p) in ids and p.ndim >= 2]
        no_decay = [p for n, p in model.named_parameters() if id(p) in ids and p.ndim < 2]
        groups.append({"params": no_decay, "lr": lr, "weight_decay": 0.0, "name": f"{name}_no_decay"})
        groups.append({"params": decay, "lr": lr, "weight_decay": config.weight_decay, "name": name})
    return torch.optim.AdamW(groups)


def _cosine_with_warmup(total_steps: int, warmup: float):
    warm = max(1, int(round(total_steps * warmup))) if warmup > 0 else 0

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total_steps - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _class_weights(labels: np.ndarray, n: int) -> torch.Tensor:
    counts = np.bincount(labels, minlength=n).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (n * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def _make_accelerator(config: TrainConfig):
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    device = resolve_device(config.device)
    cpu = device.type == "cpu"
    precision = config.mixed_precision
    if precision == "auto":
        if device.type != "cuda":
            precision = "no"
        else:
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if cpu and precision != "no":
        log.info("mixed precision is off on the CPU")
        precision = "no"
    handlers = [DistributedDataParallelKwargs(find_unused_parameters=config.freeze == "none"
                                              and config.backbone not in ("", "none", None))]
    return Accelerator(cpu=cpu, mixed_precision=precision, kwargs_handlers=handlers)


def _prepare_output_dir(path: str) -> Path:
    out = Path(path).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"cannot write to the output folder {out} ({err.strerror}); "
                          f"choose another with --output_dir") from None
    return out


def _write_history(history: list[dict], path: Path) -> None:
    keys = list(dict.fromkeys(k for row in history for k in row))
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)
    tmp.replace(path)


def _epoch_line(row: dict, epochs: int) -> str:
    text = f"epoch {row['epoch'] + 1:3d}/{epochs}  loss {row['train_loss']:.3f}  train acc {row['train_accuracy']:.3f}"
    if "val_uar" in row:
        text += f"  val UAR {row['val_uar']:.3f}  acc {row['val_accuracy']:.3f}  F1 {row['val_macro_f1']:.3f}"
    return text + f"  ({row['seconds']:.0f} s)"


def summarize_folds(results: list[dict], out: Path) -> dict:
    """Mean and standard deviation over folds of the test metrics; writes summary.json and .csv."""
    table = pd.DataFrame(results)
    metrics = [m for m in ("uar", "accuracy", "macro_f1") if m in table]
    summary = {"folds": len(results),
               **{m: {"mean": float(table[m].mean()), "std": float(table[m].std(ddof=0))} for m in metrics},
               "per_fold": results}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    table.to_csv(out / "summary.csv", index=False)
    return summary


def _versions() -> dict:
    import transformers

    from . import __version__

    import torchaudio

    return {"python": platform.python_version(), "torch": torch.__version__, "torchaudio": torchaudio.__version__,
            "transformers": transformers.__version__, "numpy": np.__version__, "ser_lib": __version__}


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.PROJECT_ROOT, capture_output=True,
                              text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
