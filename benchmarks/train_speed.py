"""Training throughput: clips per second, seconds per epoch and memory, per model, device and precision.

Times full optimisation steps (forward, backward, AdamW) on random audio batches after a warm-up
(``ser_lib.training.speed``, the code notebook 04 uses):

* ``spec``  - the spectrogram-only model (no audio backbone);
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

import torch

from ser_lib.training.speed import speed_model, time_steps

EPOCH_CLIPS = 960


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
    print(f"{'model':<12} {'precision':<9} {'params':>8} {'s/step':>8} {'clips/s':>8} {'s/epoch*':>9} "
          f"{'act. MB':>8} {'peak MB':>8}")
    for name in args.models.split(","):
        model = speed_model(name)
        params = sum(p.numel() for p in model.parameters())
        for precision in precisions:
            t = time_steps(model, args.device, precision, args.batch_size, args.seconds, args.steps,
                           cached=name == "w2v2-frozen", name=name)
            print(f"{name:<12} {precision:<9} {params / 1e6:7.1f}M {t.step_seconds:8.3f} {t.clips_per_second:8.1f} "
                  f"{EPOCH_CLIPS / t.clips_per_second:9.1f} {t.activation_mb:8.0f} {t.peak_mb:8.0f}")
        del model
        if args.device == "cuda":
            torch.cuda.empty_cache()
    print(f"* seconds per epoch of {EPOCH_CLIPS} clips, compute only (data loading excluded); act. MB: tensors "
          "kept for the backward pass; peak MB: the GPU's peak allocation (nan on the CPU)")


if __name__ == "__main__":
    main()
