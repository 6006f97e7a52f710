"""Resampling speed: milliseconds per 2 s clip from the rates corpora and microphones deliver, to 16 kHz.

``ser_lib.data.audio.resample`` (soxr, high quality) beside torchaudio's sinc resampler, which
rebuilds its kernel for every rate pair it is called with (24,414 Hz, TESS's rate, is the slow case).

    python benchmarks/resample.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
import torchaudio

from ser_lib.data import audio

RATES = (8000, 22050, 24414, 44100, 48000, 96000)


def best_ms(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{platform.processor() or 'CPU'}, torch {torch.__version__} ({torch.get_num_threads()} threads); "
          f"best of {args.repeat}, one 2 s clip to 16 kHz")
    print(f"{'from Hz':>8} {'ser_lib ms':>11} {'torchaudio ms':>14}  max |difference|")
    rng = np.random.default_rng(0)
    for rate in RATES:
        wave = (0.1 * rng.standard_normal(2 * rate)).astype(np.float32)
        ours = best_ms(lambda: audio.resample(wave, rate, 16000), args.repeat)
        theirs = best_ms(lambda: torchaudio.functional.resample(torch.from_numpy(wave), rate, 16000), args.repeat)
        a = audio.resample(wave, rate, 16000)
        b = torchaudio.functional.resample(torch.from_numpy(wave), rate, 16000).numpy()
        n = min(len(a), len(b))
        print(f"{rate:8d} {ours:11.2f} {theirs:14.1f}  {np.abs(a[:n] - b[:n])[100:-100].max():.4f}")


if __name__ == "__main__":
    main()
