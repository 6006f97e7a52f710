"""The epochs: one optimisation step, one training epoch, one validation pass.

:class:`Trainer` owns what changes while a model learns (optimiser, learning-rate schedule, losses,
the mixed-precision scaler through Hugging Face Accelerate) and can save and restore all of it, so a
resumed run continues exactly. Randomness of epoch ``e`` is drawn from ``(seed, e)``.
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from ..data.dataset import IGNORE, ClipDataset, to_device
from ..errors import TrainingError
from ..inference.batch import predict_dataset
from ..model.ser_model import SERModel
from ..reports.metrics import classification_metrics
from ..seeding import derive_seed, seed_everything
from .averaging import WeightAverage
from .config import TrainConfig
from .setup import class_weights, cosine_with_warmup, make_optimizer


class Trainer:
    """Optimisation of one model: AdamW with a cosine schedule, class-balanced emotion loss with
    label smoothing, the auxiliary gender loss, gradient clipping, a NaN guard, and optionally a moving
    average of the weights (``average_epochs`` N) that is validated and saved in place of the raw ones from
    epoch 2N on."""

    def __init__(self, model: SERModel, config: TrainConfig, accelerator, train_targets: np.ndarray,
                 num_classes: int, steps_per_epoch: int):
        self.config, self.accelerator = config, accelerator
        self.steps_per_epoch = steps_per_epoch
        optimizer = make_optimizer(model, config)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, cosine_with_warmup(steps_per_epoch * config.epochs, config.warmup))
        self.model, self.optimizer = accelerator.prepare(model, optimizer)
        weights = class_weights(train_targets, num_classes) if config.balance == "loss" else None
        self.emotion_loss = torch.nn.CrossEntropyLoss(weight=None if weights is None else weights.to(accelerator.device),
                                                      label_smoothing=config.label_smoothing)
        self.gender_loss = torch.nn.CrossEntropyLoss()
        self.spec_augment = config.spec_augmenter()
        self.average = (WeightAverage(self.unwrapped, config.average_epochs * steps_per_epoch)
                        if config.average_epochs > 0 else None)

    @property
    def unwrapped(self) -> SERModel:
        return self.accelerator.unwrap_model(self.model)

    @property
    def averaged(self) -> bool:
        """Whether the weight average is validated and saved now: from epoch 2N on (``average_epochs`` N;
        before, the first, untrained weights still weigh much in it, and the raw ones are saved)."""
        return self.average is not None and self.average.ready

    @property
    def saved_model(self) -> SERModel:
        """The model that is validated and saved: the weight average, or the raw weights."""
        return self.average.model if self.averaged else self.unwrapped

    def state_dict(self) -> dict:
        """What a ``last.pt`` needs besides the saved model's weights: optimiser, schedule, scaler and, with
        an average, the weights that were not saved (those it shares with the saved ones left out)."""
        scaler = self.accelerator.scaler
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "scaler": scaler.state_dict() if scaler is not None else None}
        if self.average is not None:
            key, other = (("raw_state_dict", self.unwrapped) if self.averaged
                          else ("average_state_dict", self.average.model))
            state[key] = {k: v.detach().cpu() for k, v in self.average.differing(other.state_dict()).items()}
            state["average_updates"], state["average_start"] = self.average.updates, self.average.start
        return state

    def load_state_dict(self, state: dict) -> None:
        """Model weights, optimiser, schedule and scaler of a ``last.pt``."""
        saved = raw = state["state_dict"]
        if self.average is not None:
            if "raw_state_dict" in state:  # the average was saved
                average, raw = saved, {**saved, **state["raw_state_dict"]}
            else:  # the raw weights were saved: the average was not ready yet
                average = {**saved, **state["average_state_dict"]}
            self.average.load_state_dict({"state_dict": average, "updates": state["average_updates"],
                                          **({"start": state["average_start"]} if "average_start" in state else {})})
        self.unwrapped.load_state_dict(raw)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.accelerator.scaler is not None and state.get("scaler"):
            self.accelerator.scaler.load_state_dict(state["scaler"])

    def step(self, batch: dict, generator: torch.Generator) -> tuple[dict, torch.Tensor]:
        """One optimisation step; the batch's losses and emotion logits."""
        augment = (lambda s, n: self.spec_augment(s, n, generator)) if self.spec_augment else None
        mix = self._mix(len(batch["emotion"]), generator)
        out = self.model(batch["wave"], batch["lengths"], spec_augment=augment, mix=mix, **batch["inputs"])
        itself = torch.arange(len(batch["emotion"]), device=batch["emotion"].device)
        parts = [(itself, 1.0)] if mix is None else [(itself, mix[1]), (mix[0], 1 - mix[1])]
        loss_e = torch.zeros((), device=out.emotion_logits.device)
        loss_g = torch.zeros((), device=loss_e.device)
        for order, weight in parts:  # a mixed clip's loss is the mixture of its two clips' losses
            loss_e = loss_e + weight * self.emotion_loss(out.emotion_logits.float(), batch["emotion"][order])
            gender = batch["gender"][order]
            known = gender != IGNORE  # clips whose speaker's gender is unknown teach the gender head nothing
            if out.gender_logits is not None and bool(known.any()):
                loss_g = loss_g + weight * self.gender_loss(out.gender_logits.float()[known], gender[known])
        loss = loss_e + self.config.gender_weight * loss_g
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the loss became {loss.item()}")
        self.optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        if self.config.grad_clip:
            self.accelerator.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        if not self.accelerator.optimizer_step_was_skipped:
            self.scheduler.step()
            if self.average is not None:
                self.average.update(self.unwrapped)
        return {"loss": loss.item(), "emotion": loss_e.item(), "gender": loss_g.item()}, out.emotion_logits

    def _mix(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, float] | None:
        """Mixup's pairing and weight for a batch of ``n`` clips (None: off, or a batch of one)."""
        if not self.config.mixup or n < 2:
            return None
        rng = np.random.default_rng(int(torch.randint(2 ** 62, (1,), generator=generator)))
        weight = float(rng.beta(self.config.mixup, self.config.mixup))
        return torch.randperm(n, generator=generator).to(self.accelerator.device), weight

    def train_epoch(self, loader, epoch: int, stop_message) -> dict:
        """Train one epoch; the epoch's row of ``history.csv`` (training losses and accuracy).

        ``stop_message()`` says what is kept on disk, for the error when the loss stops being finite.
        """
        seed_everything(derive_seed(self.config.seed, epoch))
        loader.sampler.set_epoch(epoch)
        loader.dataset.set_epoch(epoch)
        generator = torch.Generator().manual_seed(derive_seed(self.config.seed, epoch, 1))
        self.model.train()
        sums = {"loss": 0.0, "emotion": 0.0, "gender": 0.0, "correct": 0, "n": 0}
        steps = tqdm(loader, total=self.steps_per_epoch, desc=f"epoch {epoch + 1}", leave=False, unit="batch",
                     disable=not self.config.progress or not self.accelerator.is_main_process)
        for step, batch in enumerate(steps):
            if step >= self.steps_per_epoch:
                break
            batch = to_device(batch, self.accelerator.device)
            try:
                losses, logits = self.step(batch, generator)
            except FloatingPointError as err:
                raise TrainingError(f"{err} at epoch {epoch + 1}, step {step + 1}. Check the inputs for NaN, "
                                    f"lower --learning_rate / --head_lr, or use --mixed_precision no. "
                                    f"{stop_message()}") from None
            n = len(batch["emotion"])
            for key, value in losses.items():
                sums[key] += value * n
            sums["correct"] += int((logits.argmax(-1) == batch["emotion"]).sum())
            sums["n"] += n
            steps.set_postfix(loss=f"{sums['loss'] / sums['n']:.3f}")
        steps.close()
        return {"epoch": epoch, "train_loss": sums["loss"] / sums["n"],
                "train_emotion_loss": sums["emotion"] / sums["n"], "train_gender_loss": sums["gender"] / sums["n"],
                "train_accuracy": sums["correct"] / sums["n"]}

    def learning_rates(self) -> dict:
        groups = self.optimizer.param_groups
        return {"lr_heads": groups[-1]["lr"],
                "lr_backbone": groups[0]["lr"] if self.unwrapped.config.has_backbone else float("nan")}

    def evaluate(self, dataset: ClipDataset) -> dict:
        """Loss (plain cross-entropy), accuracy, UAR, macro-F1 and gender accuracy of the saved model on
        ``dataset``."""
        model = self.model  # the prepared model takes process 0's buffers at its first forward
        if self.averaged:
            self.average.broadcast_buffers()
            model = self.average.model
        with self.accelerator.autocast():
            out = predict_dataset(model, dataset, self.config.batch_size, self.accelerator.device,
                                  self.config.num_workers, max_batches=2 if self.config.quick else None)
        y, probs = out["emotion"], out["probs"]
        metrics = classification_metrics(y, probs.argmax(1), probs.shape[1])
        metrics["loss"] = float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0))))
        known = out["gender"] != IGNORE
        if out["gender_probs"] is not None and known.any():
            metrics["gender_accuracy"] = float((out["gender_probs"].argmax(1) == out["gender"])[known].mean())
        return metrics
