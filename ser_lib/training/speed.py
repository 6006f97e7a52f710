"""Training throughput and memory: clips per second, activation memory and peak GPU memory of full
optimisation steps (forward, backward, AdamW) on random audio batches.

``benchmarks/train_speed.py`` prints these figures per model and precision; notebook 04 sweeps the
batch size and the crop length with the same code.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace

import pandas as pd
import torch

from ..model.ser_model import SERModel
from .config import TrainConfig

#: What :func:`speed_model` builds: the spectrogram-only model, the dual-branch model with its feature
#: encoder frozen, and the same with the whole encoder frozen and its layer outputs cached.
SPEED_MODELS = ("spec", "w2v2", "w2v2-frozen")

#: Mixed-precision modes: float32 throughout, or autocast to bfloat16 or float16 (with a gradient scaler).
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class StepTiming:
    """One measurement: the median step of a model at one batch size, crop length and precision."""

    model: str
    device: str
    precision: str
    batch_size: int
    seconds: float
    step_seconds: float
    clips_per_second: float
    activation_mb: float  # tensors kept for the backward pass (parameters excluded): what grows with the batch
    peak_mb: float  # the accelerator's peak allocated memory; NaN on the CPU


def speed_model(name: str, encoder_config=None) -> SERModel:
    """The default architecture for 8 emotions (without descriptors: they cost nothing here).

    ``spec``: the spectrogram-only model. ``w2v2`` / ``w2v2-frozen``: the dual-branch model with a
    randomly initialised wav2vec 2.0 encoder (the speed does not depend on the weights), the
    wav2vec2-base architecture unless ``encoder_config`` (a ``Wav2Vec2Config``) says otherwise, with
    the feature encoder or the whole encoder frozen.
    """
    if name not in SPEED_MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(SPEED_MODELS)}")
    config = TrainConfig(descriptors=False).model_config(8)
    if name == "spec":
        return SERModel(config)
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    encoder = Wav2Vec2Model(encoder_config or Wav2Vec2Config())
    freeze = "backbone" if name == "w2v2-frozen" else "feature_encoder"
    return SERModel(replace(config, backbone="facebook/wav2vec2-base", freeze=freeze), encoder=encoder)


def activation_bytes(model: SERModel, wave: torch.Tensor, lengths: torch.Tensor, **inputs) -> int:
    """Bytes of the tensors one forward pass keeps for the backward pass, parameters excluded.

    Counted with autograd's saved-tensor hooks, so it works on any device; each storage is counted once.
    """
    params = {p.data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(wave, lengths, **inputs)
    return sum(seen.values())


def time_steps(model: SERModel, device: str = "cpu", precision: str = "fp32", batch_size: int = 16,
               seconds: float = 4.0, steps: int = 10, warmup: int = 3, cached: bool = False,
               name: str = "") -> StepTiming:
    """Median time of ``steps`` optimisation steps after ``warmup`` steps, and the memory they take.

    ``cached``: the encoder's layer outputs are computed once beforehand, as ``--freeze backbone``
    trains once its cache is filled. Under ``fp16`` the loss is scaled (``torch.amp.GradScaler``) so
    small gradients do not underflow; ``bf16`` has float32's range and needs no scaler.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    device_type = torch.device(device).type
    model.to(device).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    samples = int(seconds * 16000)
    generator = torch.Generator().manual_seed(0)
    wave = (torch.randn(batch_size, samples, generator=generator) * 0.1).to(device)
    lengths = torch.full((batch_size,), samples, device=device)
    labels = torch.randint(0, model.config.num_emotions, (batch_size,), generator=generator).to(device)
    inputs = {}
    if cached:
        with torch.no_grad():
            inputs["backbone_states"], inputs["backbone_lengths"] = model.backbone.layers(wave, lengths)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device_type) if precision == "fp16" else None
    cuda = device_type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(steps + warmup):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(device_type=device_type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = model(wave, lengths, **inputs)
            loss = torch.nn.functional.cross_entropy(out.emotion_logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        if scaler:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        if cuda:
            torch.cuda.synchronize()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2 ** 20 if cuda else float("nan")
    with torch.autocast(device_type=device_type, dtype=dtype or torch.float32, enabled=dtype is not None):
        saved = activation_bytes(model, wave, lengths, **inputs)
    optimizer.zero_grad(set_to_none=True)
    step_seconds = sorted(times)[len(times) // 2]
    return StepTiming(name, str(device), precision, batch_size, seconds, step_seconds, batch_size / step_seconds,
                      saved / 2 ** 20, peak)


def sweep(model: SERModel, batch_sizes=(4, 8, 16), crop_seconds=(2.0, 4.0), device: str = "cpu",
          precision: str = "fp32", steps: int = 3, warmup: int = 1, cached: bool = False,
          name: str = "") -> pd.DataFrame:
    """:func:`time_steps` over every batch size and crop length: one row each."""
    rows = [asdict(time_steps(model, device, precision, batch, seconds, steps, warmup, cached, name))
            for seconds in crop_seconds for batch in batch_sizes]
    return pd.DataFrame(rows)
