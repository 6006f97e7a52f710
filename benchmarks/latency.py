"""Streaming latency: compute time per hop (one 3 s window) and real-time factor, per model.

Each hop of ``infer --mic`` predicts the last ``--window`` seconds; to keep up with the microphone
the compute time must stay below the hop (0.5 s). This script streams synthetic speech through
``StreamingPredictor`` hop by hop, as the live demo does, and reports the compute time of each hop
with speech (the voice-activity gate, trimming, log-mel, clip descriptors, the speaker-statistics update
and the model) for

* ``spec``       - the default spectrogram model with per-speaker normalisation and clip
  descriptors (the project's and the voice encoder's): ``--model_path``, or the small demo model
  (trained once on the synthetic corpus: timing does not depend on the weights), gated by Silero VAD
  (the default); ``spec/energy`` the same with the energy gate. The target, <= 30 ms per 3 s window on
  2 CPU cores, was set for the project's descriptors alone: give ``--model_path`` a model trained with
  ``--descriptor_set ser`` to time that one;
* ``spec-plain`` - the log-mel CNN alone (``--no-speaker_norm --no-descriptors``, random weights);
* ``w2v2``       - the dual-branch model with the wav2vec2-base architecture (random weights), eager float32;
* ``w2v2-int8``  - the same with dynamic int8 quantisation of the encoder's linear layers
  (``infer --optimize int8``);
* ``spec-onnx``, ``w2v2-onnx``, ``w2v2-onnx-int8`` - the same models exported to ONNX
  (``python -m ser_lib export``, int8: onnxruntime's dynamic quantisation of the encoder) and run
  on onnxruntime (``Predictor.from_onnx``).

Each variant's agreement with its PyTorch float32 model on the same windows (top emotion and the
largest probability difference) is shown beside it; a random model exercises it as much as a trained one.

Then the gates alone: compute per hop of Silero VAD and of the energy gate, over every hop.

    python benchmarks/latency.py [--models spec,spec/energy,spec-onnx,spec-plain,w2v2,w2v2-int8,w2v2-onnx,
                                           w2v2-onnx-int8] [--device cpu|cuda] [--hops 40]
"""
from __future__ import annotations

import argparse
import copy
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ser_lib.data import audio, synth
from ser_lib.data.audio import AudioSettings
from ser_lib.data.labels import EMOTIONS
from ser_lib.inference import Predictor, StreamingPredictor, StreamSettings
from ser_lib.inference.predictor import quantize_dynamic_int8
from ser_lib.inference.vad import EnergyGate, SileroGate
from ser_lib.model import SERModel
from ser_lib.model import checkpoint as ckpt_io
from ser_lib.model.checkpoint import Checkpoint
from ser_lib.model.export import export_onnx
from ser_lib.model.normalizer import InputNormalizer
from ser_lib.training import TrainConfig, demo_checkpoint


#: Spoken hops not timed at the start of each row: the first model loaded in a process runs slower for
#: its first dozen hops (3 warm-up hops left its row 10-15 ms slow).
WARMUP = 12
#: Spoken hops streamed before the first row, untimed: without them the first row of a process was
#: still 5-10 ms slower than the same configuration run later in the process.
PROCESS_WARMUP = 60


def speech(seconds: float) -> np.ndarray:
    """About ``seconds`` of synthetic speech: the eight example clips, looped."""
    folder = tempfile.mkdtemp(prefix="ser-latency-")
    clips = [audio.load(p) for p in synth.write_examples(folder)]
    loops = int(np.ceil(seconds * 16000 / sum(len(c) for c in clips)))
    return np.concatenate(clips * loops)


def onnx_predictor(name: str, model_path: str | None) -> Predictor:
    """``spec-onnx``, ``w2v2-onnx`` or ``w2v2-onnx-int8``: the PyTorch model exported, on onnxruntime."""
    folder = Path(tempfile.mkdtemp(prefix="ser-latency-onnx-"))
    if name.startswith("spec"):
        source = model_path or demo_checkpoint()
    else:
        loaded = make_predictor("w2v2", "cpu", None).checkpoint
        source = ckpt_io.save(ckpt_io.payload(loaded.model, labels=loaded.labels, audio=loaded.audio,
                                              normalizer=loaded.normalizer, split={}, train_config={}, metrics={}),
                              folder / "w2v2.pt")
    target = folder / f"{name}.onnx"
    export_onnx(source, target, quantize="int8" if name.endswith("int8") else "none", check=False)
    return Predictor.from_onnx(target)


def make_predictor(name: str, device: str, model_path: str | None) -> Predictor:
    if name == "spec":  # the default configuration: per-speaker normalisation and clip descriptors
        return Predictor.from_checkpoint(model_path or demo_checkpoint(), device=device)
    torch.manual_seed(0)
    config = TrainConfig(descriptors=False, speaker_norm=False).model_config(len(EMOTIONS))
    if name == "spec-plain":
        model = SERModel(config)
    else:
        from transformers import Wav2Vec2Config, Wav2Vec2Model

        model = SERModel(replace(config, backbone="facebook/wav2vec2-base"), encoder=Wav2Vec2Model(Wav2Vec2Config()))
    normalizer = InputNormalizer.untrained(config.mel, AudioSettings())
    loaded = Checkpoint(model=model.eval(), labels=list(EMOTIONS), audio=AudioSettings(), normalizer=normalizer)
    return Predictor(loaded, torch.device(device))


def time_hops(predictor: Predictor, wave: np.ndarray, window: float, hop: float, hops: int,
              vad: str = "auto") -> list:
    """Stream ``wave`` hop by hop as the live demo does; the first ``hops`` full speech windows after
    :data:`WARMUP` hops (compute time per hop: gate, trimming, features, statistics update, model)."""
    stream = StreamingPredictor(predictor, 16000, StreamSettings(window=window, hop=hop, vad=vad))
    step, full = int(hop * 16000), int(window * 16000)
    spoken = []
    for start in range(0, len(wave), step):
        spoken += [r for r in stream.feed(wave[start:start + step]) if r.speech and r.end - r.start == full]
        if len(spoken) >= hops + WARMUP:
            break
    return spoken[WARMUP:hops + WARMUP]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="spec,spec/energy,spec-onnx,spec-plain,w2v2,w2v2-int8,w2v2-onnx,"
                                            "w2v2-onnx-int8")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--window", type=float, default=3.0)
    parser.add_argument("--hop", type=float, default=0.5)
    parser.add_argument("--hops", type=int, default=40)
    parser.add_argument("--model_path", help="a spectrogram-model best_model.pt for the 'spec' row (default: the demo model)")
    args = parser.parse_args()
    wave = speech(args.window + args.hop * (args.hops + WARMUP) * 1.6)
    where = torch.cuda.get_device_name() if args.device == "cuda" else \
        f"{platform.processor() or 'CPU'}, {torch.get_num_threads()} threads"
    print(f"device: {args.device} ({where}); torch {torch.__version__}; {args.window:g} s windows, "
          f"hop {args.hop:g} s, {args.hops} hops")
    print(f"{'model':<14} {'median ms':>9} {'p95 ms':>7} {'RTF':>6} {'keeps up':>8}  agreement with PyTorch float32")
    time_hops(make_predictor("spec", args.device, args.model_path), wave, args.window, args.hop, PROCESS_WARMUP,
              "energy")
    references = {}
    for row in args.models.split(","):
        name, _, vad = row.partition("/")
        family = name.split("-")[0]
        if (name == "w2v2-int8" or "onnx" in name) and args.device != "cpu":
            print(f"{row:<14} skipped: runs on the CPU")
            continue
        if name == "w2v2-int8":
            predictor = make_predictor("w2v2", args.device, None)
            predictor.model = quantize_dynamic_int8(copy.deepcopy(predictor.model))
        elif "onnx" in name:
            predictor = onnx_predictor(name, args.model_path)
        else:
            predictor = make_predictor(name, args.device, args.model_path)
        results = time_hops(predictor, wave, args.window, args.hop, args.hops, vad or "auto")
        times = np.array([r.latency_ms for r in results])
        median, p95 = np.median(times), np.percentile(times, 95)
        agreement = ""
        if name in ("spec", "w2v2") and not vad:
            references[family] = results
        elif name not in (family, "spec-plain") and family in references:
            reference = references[family]
            pairs = [(a.probs, b.probs) for a, b in zip(results, reference) if a.end == b.end]
            top = np.mean([np.argmax(a) == np.argmax(b) for a, b in pairs])
            dp = max(np.abs(a - b).max() for a, b in pairs)
            agreement = f"same top emotion {top:.0%}, max |dp| {dp:.4f} ({len(pairs)} windows)"
        print(f"{row:<14} {median:9.1f} {p95:7.1f} {median / 1000 / args.window:6.3f} "
              f"{'yes' if p95 < args.hop * 1000 else 'NO':>8}  {agreement}")
    print("RTF: compute time / window length; 'keeps up': p95 below the hop")
    step = int(args.hop * 16000)
    for gate in (SileroGate(), EnergyGate()):
        times = []
        for start in range(0, len(wave) - step + 1, step):
            started = time.perf_counter()
            gate.update(wave[start:start + step], 16000)
            times.append((time.perf_counter() - started) * 1000)
        print(f"gate alone: {gate.name:<7} median {np.median(times):.2f} ms, p95 {np.percentile(times, 95):.2f} ms "
              f"per {args.hop:g} s hop ({len(times)} hops)")


if __name__ == "__main__":
    main()
