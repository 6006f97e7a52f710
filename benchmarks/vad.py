"""Voice-activity gates in noise: hop-level precision and recall of Silero VAD and the energy gate.

Each session is one speaker's clips with pauses of 0.5-3 s between them (2 s of noise first), mixed
over a locally made noise at a signal-to-noise ratio (speech power over its active frames against
the noise's power): pink (a fan), brown (rumble), mains hum with harmonics, and babble (six clips of
other speakers summed), at 20, 10, 5 and 0 dB, and "quiet" (white noise 60 dB down). The stream's
gates decide per hop (0.5 s, as ``infer --mic``); a hop is speech in the reference when the clean
session has at least 0.1 s of active 32 ms frames in it (level within 35 dB of its loudest frame).
Precision: hops the gate opened on that hold speech; recall: speech hops it opened on; pooled over
sessions. The gates run from the start of each session, as a live stream does. Beside the stream's
gates (energy with a hang-over of 2 quiet hops, Silero without), each with the other choice:
``energy h0`` and ``silero h2``.

Speech: RAVDESS clips (``--dataset_root``, default ``../shared/data/ravdess16k`` when present;
the first half of the actors speak, the second half make the babble), else synthetic clips.

    python benchmarks/vad.py [--dataset_root DIR] [--sessions 8] [--clips 6] [--seed 0]
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ser_lib.data import audio, noise, synth
from ser_lib.inference.vad import EnergyGate, SileroGate

SR = 16000
SNRS = (20, 10, 5, 0)
KINDS = ("pink", "brown", "hum", "babble")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "ravdess16k"


def speakers_and_clips(root: Path | None, seed: int) -> dict[str, list[Path]]:
    """Clip paths per speaker: RAVDESS actor folders, or synthetic examples of ten actors."""
    if root is not None:
        found = {d.name: sorted(d.glob("*.wav")) for d in sorted(root.glob("Actor_*")) if d.is_dir()}
        if found:
            return found
        raise SystemExit(f"no Actor_*/*.wav under {root}")
    folder = Path(tempfile.mkdtemp(prefix="ser-vad-"))
    return {f"synthetic_{a:02d}": synth.write_examples(folder / f"a{a}", actor=a, seed=seed) for a in range(1, 11)}


def session(paths: list[Path], rng: np.random.Generator, clips: int) -> np.ndarray:
    """One speaker's clips with pauses: the clean session track."""
    parts = [np.zeros(2 * SR, dtype=np.float32)]
    for path in rng.choice(paths, size=clips, replace=False):
        parts += [audio.load(path), np.zeros(int(rng.uniform(0.5, 3.0) * SR), dtype=np.float32)]
    return np.concatenate(parts)


def run_gate(gate, wave: np.ndarray, hop: int) -> tuple[np.ndarray, list[float]]:
    gate.reset()
    decisions, times = [], []
    for i in range(len(wave) // hop):
        started = time.perf_counter()
        decisions.append(gate.update(wave[i * hop:(i + 1) * hop], SR))
        times.append((time.perf_counter() - started) * 1000)
    return np.array(decisions), times


def scores(decided: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    tp = float(np.sum(decided & truth))
    precision = tp / max(decided.sum(), 1)
    recall = tp / max(truth.sum(), 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-9)
    return precision, recall, f1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset_root", type=Path, default=SHARED if SHARED.is_dir() else None)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--clips", type=int, default=6, help="clips per session")
    parser.add_argument("--hop", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    clips = speakers_and_clips(args.dataset_root, args.seed)
    names = sorted(clips)
    talkers, babblers = names[:len(names) // 2], names[len(names) // 2:]
    babble_clips = [audio.load(p) for name in babblers for p in clips[name][:6]]
    hop = int(args.hop * SR)
    gates = {"energy": EnergyGate(), "energy h0": EnergyGate(hangover=0),
             "silero": SileroGate(), "silero h2": SileroGate(hangover=2)}
    sessions = [session(clips[talkers[k % len(talkers)]], rng, args.clips) for k in range(args.sessions)]
    truth = [noise.speech_hops(clean, hop, SR) for clean in sessions]
    source = args.dataset_root or "synthetic clips"
    print(f"{len(sessions)} sessions of {args.clips} clips from {source} ({len(talkers)} speakers; babble from "
          f"{len(babblers)} others), {sum(len(t) for t in truth)} hops of {args.hop:g} s, "
          f"{sum(t.sum() for t in truth)} with speech")
    print(f"{'':<14}" + "".join(f"  {name:>17}" for name in gates))
    print(f"{'noise':<7} {'SNR dB':>6}" + f"  {'P':>5} {'R':>5} {'F1':>5}" * len(gates))
    timing = {name: [] for name in gates}
    rows = [("quiet", 60.0)] + [(kind, float(snr)) for kind in KINDS for snr in SNRS]
    for kind, snr in rows:
        decided = {name: [] for name in gates}
        for clean in sessions:
            made = noise.make("white" if kind == "quiet" else kind, len(clean), rng, SR, clips=babble_clips)
            active = np.repeat(noise.speech_activity(clean, SR), 512)[:len(clean)]
            mixed = clean[:len(active)] + noise.scale_to_snr(clean[:len(active)], made[:len(active)], snr,
                                                            active.astype(bool))
            mixed = (mixed / max(1.0, np.abs(mixed).max())).astype(np.float32)
            for name, gate in gates.items():
                flags, times = run_gate(gate, mixed, hop)
                decided[name].append(flags)
                timing[name] += times
        cells = []
        for name in gates:
            n = min(sum(len(d) for d in decided[name]), sum(len(t) for t in truth))
            flags = np.concatenate(decided[name])[:n]
            p, r, f = scores(flags, np.concatenate([t[:len(d)] for t, d in zip(truth, decided[name])])[:n])
            cells.append(f"{p:5.2f} {r:5.2f} {f:5.2f}")
        label = "-" if kind == "quiet" else f"{snr:g}"
        print(f"{kind:<7} {label:>6}  {'  '.join(cells)}")
    print("energy, silero: the stream's gates; h0, h2: the same with a hang-over of 0 or 2 quiet hops before closing")
    where = f"{platform.processor() or 'CPU'}, {torch.get_num_threads()} threads"
    print(f"compute per {args.hop:g} s hop ({where}): " + ", ".join(
        f"{name} median {np.median(t):.2f} ms, p95 {np.percentile(t, 95):.2f} ms" for name, t in timing.items()))


if __name__ == "__main__":
    main()
