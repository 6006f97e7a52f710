"""Clip-descriptor throughput: milliseconds per clip, in one process and in worker processes.

The project's descriptors (``ser``: pitch, energy, MFCC and spectral statistics) are computed once per clip and
cached; a new corpus, or the noisy cold-start copies of its training clips, computes them all. Times
``features.descriptor_matrix`` on synthetic clips with an empty cache: one worker process, then one per
core, each running one thread (``ser_lib.workers``), then one per core left at its default thread
count, the oversubscribed setup this replaces.

    python benchmarks/descriptors.py [--clips 240]
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from unittest import mock

import soundfile as sf
import torch

from ser_lib.data import features, synth
from ser_lib.data.audio import AudioSettings


def ms_per_clip(files: list[str], waves: list, cache: Path, workers: int, pool=None) -> float:
    """Wall milliseconds per clip of ``descriptor_matrix`` into the empty cache folder ``cache``."""
    settings = AudioSettings()
    with mock.patch.dict(os.environ, {"SER_CACHE_DIR": str(cache)}):
        start = time.perf_counter()
        if pool is None:
            features.descriptor_matrix(files, waves, settings, workers=workers)
        else:
            with mock.patch("ser_lib.data.cache.process_pool", pool):
                features.descriptor_matrix(files, waves, settings, workers=workers)
    return 1000 * (time.perf_counter() - start) / len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=240, help="synthetic clips (60 per voice)")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        corpus = synth.generate(Path(tmp) / "corpus", actors=max(1, args.clips // 60), progress=False)
        files = sorted(str(p) for p in corpus.rglob("*.wav"))
        settings = AudioSettings()
        waves = [settings.prepare(sf.read(f, dtype="float32")[0]) for f in files]
        print(f"{platform.processor() or 'CPU'}, {cores} cores, torch {torch.__version__}; {len(files)} clips of "
              f"{sum(len(w) for w in waves) / len(waves) / settings.sample_rate:.1f} s on average")
        print(f"{'setup':<42} {'ms/clip':>8}")
        rows = [("1 worker process", 1, None), (f"{cores} workers, one thread each", cores, None),
                (f"{cores} workers, default threads", cores, lambda n: ProcessPoolExecutor(max_workers=n))]
        for i, (name, workers, pool) in enumerate(rows):
            print(f"{name:<42} {ms_per_clip(files, waves, Path(tmp) / f'cache{i}', workers, pool):8.1f}", flush=True)


if __name__ == "__main__":
    main()
