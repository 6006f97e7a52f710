"""Why a model of one corpus fails on another at a cold start: where its inputs move, and what moves them.

    python benchmarks/corpus_shift.py --source ravdess=../shared/data/ravdess16k
        --target cremad=../shared/data/cremad16k [--model RUN/best_model.pt] [--clips 200] [--snr 30,20,15]
        [--versions 3] [--speech_rules 25:6,20:12]

Prints, on ``--clips`` clips of each corpus (drawn with a fixed seed):

* how far the speech stands above the room noise (loudest frame minus the 10th-percentile frame, dB)
  and the clip length before and after trimming, by the peak alone and with the noise-floor rule;
* how loud the speech is, and its long-term spectrum: the level of each octave band against 0.5-1 kHz
  and the slope over 250 Hz-6 kHz (dB per octave), the microphone's and room's colouring with the voices';
* the clip descriptors that move most from source to target, in source standard deviations, and how
  closely noise added to the source clips at each ``--snr`` reproduces that shift (correlation over
  all descriptors, mean size);
* the same shift for descriptors of other versions (``--versions``; version 3 subtracts the noise floor first);
* the same shift when the speech frames are picked by other rules (``--speech_rules``);
* with ``--model``: its UAR on every target clip at a cold start, adapted, with the statistics of all
  target clips pooled (no speaker, no label), with the pooled statistics in one branch only, and at a
  cold start with groups of the most shifted descriptors held at the training mean (do they cost the
  transfer, or carry it?).
"""
from __future__ import annotations

import argparse
from unittest import mock

import numpy as np
import pandas as pd

from ser_lib.data import audio, channel, corpora, features
from ser_lib.data.augment import add_noise
from ser_lib.data.corpora import Dataset
from ser_lib.data.dataset import ClipDataset, load_table


def sample(dataset: str, clips: int, settings: audio.AudioSettings):
    """``clips`` clips of a corpus (fixed seed): the table, raw waves and prepared waves."""
    table = corpora.scan([Dataset.parse(dataset)], progress=False).clips
    table = table.iloc[np.random.default_rng(0).choice(len(table), min(clips, len(table)), replace=False)]
    raw = audio.AudioSettings(trim_db=None, max_seconds=settings.max_seconds)
    table, waves, _ = load_table(table, raw, progress=False)
    return table, waves, [settings.prepare(w) for w in waves]


def recording(name: str, waves: list[np.ndarray], sr: int) -> None:
    """How far the speech stands above the room noise, and what trimming keeps."""
    heights = []
    for w in waves:
        levels = audio.frame_levels(w, sr)  # the frames trimming judges by
        heights.append(levels.max() - np.percentile(levels, 10))
    trims = (lambda w: w, lambda w: audio.trim_silence(w, sr, floor_db=None), lambda w: audio.trim_silence(w, sr))
    seconds = [np.mean([len(trim(w)) for w in waves]) / sr for trim in trims]
    print(f"{name:<10} speech above the room noise: median {np.median(heights):5.1f} dB (10th percentile "
          f"{np.percentile(heights, 10):5.1f}); seconds: raw {seconds[0]:.2f}, trimmed by the peak "
          f"{seconds[1]:.2f}, with the noise floor {seconds[2]:.2f}")


#: Octave bands of the long-term spectrum, in Hz; levels are given against the 500-1000 Hz band.
BANDS = ((125, 250), (250, 500), (1000, 2000), (2000, 4000), (4000, 8000))
#: Descriptors the model may hold at the training mean on the target (``--model``): the recording level,
#: the seconds of speech (the corpus's sentences), and the level contours room noise flattens.
HELD = {"level": ("rms_mean", "rms_max", "mfcc0_mean"), "seconds of speech": ("active_seconds",),
        "level contours": ("rms_std", "mfcc0_std", "dmfcc0_std")}


def spectrum(name: str, table: pd.DataFrame, clips: int) -> None:
    """The speech level and long-term average spectrum of a corpus's clips."""
    prof = channel.profile(table, n=clips)
    f, ltas = prof.freqs, prof.ltas_db
    ref = ltas[(f >= 500) & (f < 1000)].mean()
    sel = (f >= 250) & (f <= 6000)
    slope = np.polyfit(np.log2(f[sel] / 1000.0), ltas[sel], 1)[0]
    bands = ", ".join(f"{lo}-{hi} Hz {ltas[(f >= lo) & (f < hi)].mean() - ref:+5.1f}" for lo, hi in BANDS)
    print(f"{name:<10} speech level: median {np.median(prof.level_db):5.1f} dBFS; spectrum against 0.5-1 kHz: "
          f"{bands} dB; slope {slope:+.2f} dB per octave")


def descriptor_shift(raw_source: list[np.ndarray], source: list[np.ndarray], target: list[np.ndarray],
                     snrs: list[float], settings: audio.AudioSettings, versions: list[int]) -> None:
    """Descriptors of prepared target clips against the source's, and of noisy copies of the raw source;
    then the same shift for other descriptor ``versions``."""
    names = features.descriptor_names()

    def describe(waves, version=features.DESCRIPTOR_VERSION):
        return np.stack([features.clip_descriptors(w, settings, version) for w in waves])

    src, tgt = describe(source), describe(target)
    mean, std = src.mean(0), src.std(0) + 1e-6
    shift = (tgt.mean(0) - mean) / std
    top = np.argsort(-np.abs(shift))[:8]
    print(f"\ndescriptor shift, target minus source, in source standard deviations "
          f"(mean size {np.abs(shift).mean():.2f}, median {np.median(np.abs(shift)):.2f}):")
    print("  " + ", ".join(f"{names[i]} {shift[i]:+.2f}" for i in top))
    for version in versions:
        src_v, tgt_v = describe(source, version), describe(target, version)
        moved = (tgt_v.mean(0) - src_v.mean(0)) / (src_v.std(0) + 1e-6)
        print(f"  descriptors of version {version}: mean size {np.abs(moved).mean():.2f}, median "
              f"{np.median(np.abs(moved)):.2f}; " + ", ".join(f"{names[i]} {moved[i]:+.2f}"
                                                              for i in np.argsort(-np.abs(moved))[:4]))
    rng = np.random.default_rng(1)
    for snr in snrs:
        noisy = describe([settings.prepare(add_noise(w, snr, rng, colour="pink")) for w in raw_source])
        moved = (noisy.mean(0) - mean) / std
        print(f"  source + pink noise at {snr:4.0f} dB: correlation with the target's shift "
              f"{np.corrcoef(moved, shift)[0, 1]:.2f}, mean size {np.abs(moved).mean():.2f}; "
              + ", ".join(f"{names[i]} {moved[i]:+.2f}" for i in top[:4]))


def speech_frame_rules(source: list[np.ndarray], target: list[np.ndarray], rules: list[tuple[float, float]],
                       settings: audio.AudioSettings) -> None:
    """The descriptor shift when speech frames are those within ``range`` dB of the loudest frame and
    ``floor`` dB above the noise floor (:func:`features.active_frames`), for each ``(range, floor)``."""
    names = features.descriptor_names()
    rule = features.active_frames
    print("\ndescriptor shift by the rule that picks the speech frames (the shift above: within 35 dB of the "
          "loudest, 12 dB above the floor):")
    for range_db, floor_db in rules:
        def picked(levels, range_db=range_db, above_floor_db=floor_db):
            return rule(levels, range_db, above_floor_db)

        with mock.patch.object(features, "active_frames", picked):
            src, tgt = (np.stack([features.clip_descriptors(w, settings) for w in waves]) for waves in (source, target))
        shift = (tgt.mean(0) - src.mean(0)) / (src.std(0) + 1e-6)
        top = np.argsort(-np.abs(shift))[:4]
        print(f"  within {range_db:4.0f} dB, {floor_db:4.0f} dB above the floor: mean size {np.abs(shift).mean():.2f}; "
              + ", ".join(f"{names[i]} {shift[i]:+.2f}" for i in top))


def statistics_swap(model_path: str, target: str) -> None:
    """The model's UAR on every target clip under each choice of statistics."""
    from ser_lib.inference.batch import predict_dataset
    from ser_lib.model import checkpoint
    from ser_lib.reports.metrics import compute_metrics

    loaded = checkpoint.load(model_path, "cpu")
    clips = corpora.scan([Dataset.parse(target)], progress=False).clips
    clips = clips[clips["emotion"].isin(loaded.labels)].reset_index(drop=True)
    clips, waves, _ = load_table(clips, loaded.audio, progress=False)
    shared = [label for label in loaded.labels if label in set(clips["emotion"])]
    y = clips["emotion"].map({label: k for k, label in enumerate(shared)}).to_numpy()
    paths, speakers, norm = clips["path"].tolist(), clips["speaker"].tolist(), loaded.normalizer
    names = clips["corpus"].tolist()  # a model of several corpora starts a voice of one of them from its statistics
    cold = norm.inputs(waves, paths, speakers, adapt=False, corpora=names)
    pooled = norm.inputs(waves, paths, ["everyone"] * len(waves), corpora=names)
    mel = ("mel_mean", "mel_std")
    rows = {
        "cold start (training statistics)": cold,
        "adapted (each speaker's statistics)": norm.inputs(waves, paths, speakers, corpora=names),
        "all target clips pooled": pooled,
        "pooled for the log-mel branch only": {**cold, **{k: pooled[k] for k in mel if k in pooled}},
        "pooled for the descriptors only": {**pooled, **{k: cold[k] for k in mel if k in cold}},
    }
    if "descriptors" in cold:
        model_descriptors = list(features.descriptor_names(norm.descriptor_set))
        for group, held in HELD.items():
            at_mean = [model_descriptors.index(name) for name in held if name in model_descriptors]
            if at_mean:
                rows[f"cold start, {group} held"] = {**cold, "descriptors": cold["descriptors"].copy()}
                rows[f"cold start, {group} held"]["descriptors"][:, at_mean] = 0.0  # normalised: the training mean
    print(f"\n{model_path} on {target} ({len(clips)} clips; UAR over {len(shared)} classes):")
    columns = [loaded.labels.index(label) for label in shared]
    for name, inputs in rows.items():
        out = predict_dataset(loaded.model, ClipDataset(clips, waves, y, loaded.audio, train=False, inputs=inputs),
                              32, "cpu", progress=False)
        probs = out["probs"][np.argsort(out["index"])][:, columns]
        print(f"  {name:<42} {compute_metrics(y, probs / probs.sum(1, keepdims=True), shared)['uar']:.3f}")
        if name.startswith("cold start (") or name.startswith("adapted"):
            recall = [np.mean(probs[y == k].argmax(1) == k) for k in range(len(shared))]
            print("    recall: " + ", ".join(f"{label} {r:.2f}" for label, r in zip(shared, recall)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="NAME=PATH of the corpus a model is trained on")
    parser.add_argument("--target", required=True, help="NAME=PATH of the corpus it is tested on")
    parser.add_argument("--model", help="a checkpoint trained on the source: swap its statistics on the target")
    parser.add_argument("--clips", type=int, default=200, help="clips per corpus for the recording and shifts")
    parser.add_argument("--snr", default="30,20,15", help="SNRs (dB) of the noise added to the source clips")
    parser.add_argument("--versions", default="3",
                        help="other descriptor versions whose shift is printed too (comma-separated; none: no other)")
    parser.add_argument("--speech_rules", default="25:6,20:12,20:6,15:3",
                        help="RANGE:FLOOR (dB) rules for the speech frames the descriptors are taken over")
    args = parser.parse_args()
    try:
        rules = [(float(a), float(b)) for a, b in (rule.split(":") for rule in args.speech_rules.split(","))]
    except ValueError:
        parser.error(f"--speech_rules takes RANGE:FLOOR pairs in dB, e.g. 25:6,20:12; got {args.speech_rules!r}")
    try:
        versions = [] if args.versions.strip().lower() in ("", "none") else [int(v) for v in args.versions.split(",")]
    except ValueError:
        parser.error(f"--versions takes descriptor versions such as 1,3; got {args.versions!r}")
    if set(versions) - set(features.DESCRIPTOR_VERSIONS):
        parser.error(f"--versions: this ser_lib computes descriptor versions {features.DESCRIPTOR_VERSIONS}")
    settings = audio.AudioSettings()
    source_table, raw_source, source = sample(args.source, args.clips, settings)
    target_table, raw_target, target = sample(args.target, args.clips, settings)
    recording(args.source.split("=")[0], raw_source, settings.sample_rate)
    recording(args.target.split("=")[0], raw_target, settings.sample_rate)
    spectrum(args.source.split("=")[0], source_table, args.clips)
    spectrum(args.target.split("=")[0], target_table, args.clips)
    descriptor_shift(raw_source, source, target, [float(s) for s in args.snr.split(",")], settings, versions)
    speech_frame_rules(source, target, rules, settings)
    if args.model:
        statistics_swap(args.model, args.target)


if __name__ == "__main__":
    main()
