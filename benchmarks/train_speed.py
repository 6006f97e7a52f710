"""Training throughput: clips per second and seconds per epoch, per model, device and precision.

Times full optimisation steps (forward, backward, AdamW) on random audio batches after a warm-up:

* ``spec``  - the spectrogram-only model (what trains without any download);
* ``w2v2``  - the full dual-branch model with the wav2vec2-base architecture (randomly initialised:
  only the speed matters here), feature encoder frozen as in the recommended setup;
* ``w2v2-frozen`` - the same with the whole encoder frozen and its layer outputs precomputed
  (what ``--freeze backbone`` trains after the first pass fills the cache).

    python benchmarks/train_speed.py [--models spec,w2v2] [--device cpu|cuda] [--precisions fp32,bf16]
                                     [--batch_size 16] [--seconds 4] [--steps 10]

Seconds per epoch are given for 960 training clips (16 actors, one RAVDESS fold's training part).
"""
from __future__ import annotations

import argparse
import platform
import time
from dataclasses import replace

import torch

from ser_lib.model import SERModel
from ser_lib.training import TrainConfig

EPOCH_CLIPS = 960


def build(name: str) -> SERModel:
    """The default architecture (without descriptors: they cost nothing here) for 8 emotions."""
    config = TrainConfig(descriptors=False).model_config(8)
    if name == "spec":
        return SERModel(config)
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    encoder = Wav2Vec2Model(Wav2Vec2Config())  # the wav2vec2-base architecture, random weights
    freeze = "backbone" if name == "w2v2-frozen" else "feature_encoder"
    return SERModel(replace(config, backbone="facebook/wav2vec2-base", freeze=freeze), encoder=encoder)


def time_steps(model: SERModel, device: str, precision: str, batch: int, seconds: float, steps: int,
               cached: bool) -> float:
    """Seconds per optimisation step (median of ``steps`` after 3 warm-up steps)."""
    model.to(device).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    samples = int(seconds * 16000)
    wave = torch.randn(batch, samples, device=device) * 0.1
    lengths = torch.full((batch,), samples, device=device)
    labels = torch.randint(0, model.config.num_emotions, (batch,), device=device)
    states = state_lengths = None
    if cached:
        with torch.no_grad():
            states, state_lengths = model.backbone.layers(wave, lengths)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device) if precision == "fp16" else None
    times = []
    for step in range(steps + 3):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(device_type=device, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = model(wave, lengths, backbone_states=states, backbone_lengths=state_lengths)
            loss = torch.nn.functional.cross_entropy(out.emotion_logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        if scaler:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if step >= 3:
            times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="spec,w2v2,w2v2-frozen")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precisions", default=None, help="default: fp32 on CPU; fp32,bf16,fp16 on GPU")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    precisions = (args.precisions or ("fp32,bf16,fp16" if args.device == "cuda" else "fp32")).split(",")
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"{platform.processor() or 'CPU'} " \
        f"({torch.get_num_threads()} threads)"
    print(f"device: {args.device} - {where}; torch {torch.__version__}; batch {args.batch_size} x "
          f"{args.seconds:g} s crops")
    print(f"{'model':<12} {'precision':<9} {'params':>10} {'s/step':>8} {'clips/s':>8} {'s/epoch*':>9}")
    for name in args.models.split(","):
        model = build(name)
        params = sum(p.numel() for p in model.parameters())
        for precision in precisions:
            seconds = time_steps(model, args.device, precision, args.batch_size, args.seconds, args.steps,
                                 cached=name == "w2v2-frozen")
            rate = args.batch_size / seconds
            print(f"{name:<12} {precision:<9} {params / 1e6:9.1f}M {seconds:8.3f} {rate:8.1f} {EPOCH_CLIPS / rate:9.1f}")
        del model
        if args.device == "cuda":
            torch.cuda.empty_cache()
    print(f"* seconds per epoch of {EPOCH_CLIPS} clips, compute only (data loading excluded)")


if __name__ == "__main__":
    main()
