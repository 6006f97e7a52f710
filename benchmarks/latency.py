"""Streaming latency: compute time per hop (one 3 s window) and real-time factor, per model.

Each hop of ``infer --mic`` predicts the last ``--window`` seconds; to keep up with the microphone
the compute time must stay below the hop (0.5 s). This script times ``Predictor.predict`` (resampling,
trimming, log-mel and the model) on windows of synthetic speech for

* ``spec``       - the spectrogram-only model (target: <= 30 ms per 3 s window on 2 CPU cores);
* ``w2v2``       - the dual-branch model with the wav2vec2-base architecture, eager float32;
* ``w2v2-int8``  - the same with dynamic int8 quantisation of the encoder's linear layers
  (``infer --optimize int8``), with its agreement with float32 on the same windows.

Models are randomly initialised unless ``--model_path`` gives a trained spectrogram-only checkpoint:
timing does not depend on the weights. Agreement is measured on the logits (relative error) and the
top emotion, which a random model exercises as much as a trained one.

    python benchmarks/latency.py [--models spec,w2v2,w2v2-int8] [--device cpu|cuda] [--hops 40]
"""
from __future__ import annotations

import argparse
import copy
import platform
import tempfile
import time

import numpy as np
import torch

from ser_lib import audio, synth
from ser_lib.checkpoint import Checkpoint
from ser_lib.data import AudioSettings
from ser_lib.inference import Predictor, quantize_dynamic_int8
from ser_lib.model import ModelConfig, SERModel
from ser_lib.ravdess import EMOTIONS


def windows(seconds: float, count: int) -> list[np.ndarray]:
    """``count`` windows of synthetic speech (one example clip per emotion, looped)."""
    folder = tempfile.mkdtemp(prefix="ser-latency-")
    clips = [audio.load(p) for p in synth.write_examples(folder)]
    stream = np.concatenate(clips * 4)
    size = int(seconds * 16000)
    starts = np.linspace(0, len(stream) - size, count).astype(int)
    return [stream[s:s + size] for s in starts]


def make_predictor(name: str, device: str, model_path: str | None) -> Predictor:
    if name == "spec" and model_path:
        return Predictor.from_checkpoint(model_path, device=device)
    torch.manual_seed(0)
    if name == "spec":
        model = SERModel(ModelConfig(backbone=None))
    else:
        from transformers import Wav2Vec2Config, Wav2Vec2Model

        model = SERModel(ModelConfig(backbone="facebook/wav2vec2-base"), encoder=Wav2Vec2Model(Wav2Vec2Config()))
    loaded = Checkpoint(model=model.eval(), labels=list(EMOTIONS.values()), emotion_codes=list(EMOTIONS),
                        emotion_subset="all", split={}, audio=AudioSettings(), metrics={}, train_config={},
                        path=None)
    return Predictor(loaded, torch.device(device))


def time_hops(predictor: Predictor, wins: list[np.ndarray], device: str) -> tuple[np.ndarray, list[np.ndarray]]:
    logits, times = [], []
    for i, w in enumerate(wins + wins[:3]):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.inference_mode():
            x = torch.from_numpy(predictor.prepare(w, 16000))[None].to(predictor.device)
            out = predictor.model(x).emotion_logits.float().cpu().numpy()[0]
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= 3:  # the first three are warm-up
            times.append((time.perf_counter() - start) * 1000)
            logits.append(out)
    return np.array(times), logits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="spec,w2v2,w2v2-int8")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--window", type=float, default=3.0)
    parser.add_argument("--hop", type=float, default=0.5)
    parser.add_argument("--hops", type=int, default=40)
    parser.add_argument("--model_path", help="a trained spectrogram-only best_model.pt for the 'spec' row")
    args = parser.parse_args()
    wins = windows(args.window, args.hops)
    where = torch.cuda.get_device_name() if args.device == "cuda" else \
        f"{platform.processor() or 'CPU'}, {torch.get_num_threads()} threads"
    print(f"device: {args.device} ({where}); torch {torch.__version__}; {args.window:g} s windows, "
          f"hop {args.hop:g} s, {args.hops} hops")
    print(f"{'model':<10} {'median ms':>9} {'p95 ms':>7} {'RTF':>6} {'keeps up':>8}  agreement with float32")
    reference = None
    for name in args.models.split(","):
        if name == "w2v2-int8":
            if args.device != "cpu":
                print(f"{name:<10} skipped: dynamic int8 quantisation runs on the CPU")
                continue
            predictor = make_predictor("w2v2", args.device, None)
            predictor.model = quantize_dynamic_int8(copy.deepcopy(predictor.model))
        else:
            predictor = make_predictor(name, args.device, args.model_path)
        times, logits = time_hops(predictor, wins, args.device)
        median, p95 = np.median(times), np.percentile(times, 95)
        agreement = ""
        if name == "w2v2":
            reference = logits
        if name == "w2v2-int8" and reference is not None:
            rel = np.mean([np.linalg.norm(a - b) / np.linalg.norm(b) for a, b in zip(logits, reference)])
            top = np.mean([np.argmax(a) == np.argmax(b) for a, b in zip(logits, reference)])
            dp = max(np.abs(_softmax(a) - _softmax(b)).max() for a, b in zip(logits, reference))
            agreement = f"logit rel. error {rel:.4f}, same top emotion {top:.0%}, max |dp| {dp:.4f}"
        print(f"{name:<10} {median:9.1f} {p95:7.1f} {median / 1000 / args.window:6.3f} "
              f"{'yes' if p95 < args.hop * 1000 else 'NO':>8}  {agreement}")
    print("RTF: compute time / window length; 'keeps up': p95 below the hop")


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


if __name__ == "__main__":
    main()
