"""Command line: ``python -m ser_lib SUBCOMMAND`` (or ``ser SUBCOMMAND``).

Each subcommand parses its options and calls the library; user mistakes (:class:`SERError`) are
printed as one clear message, without a traceback, with exit status 2.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .errors import SERError

log = logging.getLogger("ser_lib")


def _cmd_synth(args: argparse.Namespace) -> int:
    from . import paths, ravdess, synth

    if args.examples:
        written = synth.write_examples(args.examples, actor=args.example_actor, seed=args.seed)
        print(f"wrote {len(written)} example clips (one per emotion) to {args.examples}")
        return 0
    out = Path(args.out) if args.out else paths.synthetic_dir(args.actors, args.seed)
    synth.generate(out, actors=args.actors, seed=args.seed, workers=args.workers)
    clips = ravdess.index(out)
    print(f"synthetic corpus: {len(clips)} clips of {clips['actor'].nunique()} actors in {out}")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from . import download

    resource = download.RAVDESS_SPEECH
    if args.url or args.md5:
        resource = download.Resource(url=args.url or resource.url, filename=resource.filename,
                                     md5=args.md5 or resource.md5, size=None if args.url else resource.size)
    root = download.download(args.root, resource, retries=args.retries, keep_archive=args.keep_archive)
    print(f"RAVDESS speech is in {root} (licence: {download.RAVDESS_SPEECH.licence}).")
    print(f"Next: python -m ser_lib index --dataset_root {root}")
    return 0


def _cmd_index(args: argparse.Namespace) -> int:
    from . import paths, ravdess

    root = args.dataset_root or paths.synthetic_root()
    result = ravdess.scan(root, speech_only=not args.all_modalities)
    print(ravdess.format_summary(result, root))
    if args.csv:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        result.clips.to_csv(args.csv, index=False)
        print(f"\nclip table written to {args.csv}")
    return 1 if (args.strict and result.problems) else 0


def _cmd_train(args: argparse.Namespace) -> int:
    from . import ravdess, train

    values = {k: v for k, v in vars(args).items() if k in train.TrainConfig.__dataclass_fields__}
    for key in ("test_actors", "val_actors"):
        if values.get(key) is not None:
            values[key] = ravdess.parse_actor_list(values[key])
    if values.get("device") is None:
        values["device"] = "auto"
    config = train.TrainConfig(**values)
    try:
        result = train.train(config)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the last finished epoch is saved in {config.output_dir}; "
              f"continue with the same command plus --resume", file=sys.stderr)
        return 130
    if config.folds:
        print(f"{result['folds']}-fold cross-validation ({config.emotion_subset}): "
              + ", ".join(f"{m} {result[m]['mean']:.3f} ± {result[m]['std']:.3f}" for m in ("uar", "accuracy", "macro_f1")))
        print(f"summary: {Path(config.output_dir) / 'summary.json'}")
    else:
        print(f"test ({config.emotion_subset}, actors of split {result['split']}): UAR {result['uar']:.3f}, "
              f"accuracy {result['accuracy']:.3f}, macro-F1 {result['macro_f1']:.3f} "
              f"(best epoch {result['best_epoch']})")
        print(f"model: {Path(config.output_dir) / 'best_model.pt'}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from . import evaluate, ravdess

    target = Path(args.model_path)
    options = dict(dataset_root=args.dataset_root, output_dir=args.output_dir, batch_size=args.batch_size,
                   device=args.device, progress=args.progress)
    if target.is_dir() and evaluate.fold_checkpoints(target):
        if args.actors or args.emotion_subset:
            print("error: --actors and --emotion_subset apply to one checkpoint, not to a K-fold folder",
                  file=sys.stderr)
            return 2
        summary = evaluate.evaluate_folds(target, **options)
        out = Path(args.output_dir) if args.output_dir else target / "evaluation"
        print(f"{summary['folds']} folds: " + ", ".join(
            f"{k} {summary[k]['mean']:.3f} ± {summary[k]['std']:.3f}" for k in ("uar", "accuracy", "macro_f1")))
        print(f"summary: {out / 'summary.md'}")
        return 0
    if target.is_dir():
        target = target / "best_model.pt"
    result = evaluate.evaluate_checkpoint(target, actors=ravdess.parse_actor_list(args.actors),
                                          emotion_subset=args.emotion_subset, **options)
    metrics, out = result.metrics, result.folder
    actors = " ".join(f"{a:02d}" for a in metrics["actors"])
    print(f"actors {actors}, {metrics['n_clips']} clips: UAR {metrics['uar']:.3f}, accuracy {metrics['accuracy']:.3f}, "
          f"macro-F1 {metrics['macro_f1']:.3f}, ROC AUC {metrics['roc_auc_macro'] or float('nan'):.3f}, "
          f"ECE {metrics['ece']:.3f}")
    print(f"report: {out / 'report.md'}")
    return 0


def _cmd_infer(args: argparse.Namespace) -> int:
    from . import live
    from .inference import Predictor, StreamingPredictor

    if args.list_devices:
        print(live.format_devices(live.input_devices()))
        return 0
    if not args.model_path:
        print("error: --model_path is required (a best_model.pt from `python -m ser_lib train`)", file=sys.stderr)
        return 2
    if bool(args.input) == bool(args.mic):
        print("error: give either --input FILE or --mic", file=sys.stderr)
        return 2
    predictor = Predictor.from_checkpoint(args.model_path, device=args.compute_device, optimize=args.optimize)
    if args.adapt:
        missing = [f for f in args.adapt if not Path(f).is_file()]
        if missing:
            print(f"error: --adapt: no such file: {', '.join(missing)}", file=sys.stderr)
            return 2
        predictor.adapt(args.adapt)
        print(f"adapted to the speaker of {len(args.adapt)} clip(s)", file=sys.stderr)
    if args.input and args.whole:
        prediction = predictor.predict_file(args.input)
        print(f"{args.input}: {prediction.label} ({prediction.confidence:.2f})")
        for label, p in sorted(prediction.as_dict().items(), key=lambda kv: -kv[1]):
            print(f"  {label:<10} {p:.3f}  {'█' * int(round(p * 40))}")
        return 0
    source = live.FileSource(args.input, realtime=args.realtime) if args.input else live.MicrophoneSource(args.device)
    stream = StreamingPredictor(predictor, source.sample_rate, window=args.window, hop=args.hop,
                                smoothing=args.smoothing)
    if args.text or (args.input and not args.save_frames):
        view = live.TextView()
    elif args.save_frames or live.has_display():
        view = live.PlotView(predictor.labels, interactive=live.has_display() and not args.input,
                             save_frames=args.save_frames)
    else:
        print("no display: showing the text view (use --save-frames DIR for pictures)", file=sys.stderr)
        view = live.TextView()
    if args.mic:
        print(f"listening on {source.device if source.device is not None else 'the default microphone'} at "
              f"{source.sample_rate} Hz; Ctrl-C stops", file=sys.stderr)
    results = live.run_live(stream, source, view, max_seconds=args.max_seconds)
    spoken = [r for r in results if r.speech]
    if spoken:
        latency = sorted(r.latency_ms for r in spoken)
        print(f"{len(results)} hops, {len(spoken)} with speech; latency median {latency[len(latency) // 2]:.0f} ms",
              file=sys.stderr)
    return 0


def _add_train_options(p: argparse.ArgumentParser) -> None:
    from .train import TrainConfig

    d = TrainConfig()
    p.add_argument("--dataset_root", help="RAVDESS-layout folder (default: the built-in synthetic corpus)")
    p.add_argument("--output_dir", default=d.output_dir, help=f"run folder (default {d.output_dir})")
    p.add_argument("--emotion_subset", default=d.emotion_subset, choices=["all", "basic6", "basic4"],
                   help=f"emotion classes (default {d.emotion_subset}: 8 classes)")
    p.add_argument("--batch_size", type=int, default=d.batch_size)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--learning_rate", type=float, default=d.learning_rate, help="learning rate of the pretrained encoder")
    p.add_argument("--head_lr", type=float, default=d.head_lr, help="learning rate of the new layers")
    p.add_argument("--weight_decay", type=float, default=d.weight_decay)
    p.add_argument("--warmup", type=float, default=d.warmup, help="warm-up as a fraction of all steps")
    p.add_argument("--gender_weight", type=float, default=d.gender_weight, help="auxiliary gender loss weight (0: off)")
    p.add_argument("--max_seconds", type=float, default=d.max_seconds, help="crop length in seconds")
    p.add_argument("--device", default=None, help="cuda if available, else cpu (or: cpu, cuda, mps)")
    p.add_argument("--backbone", default=d.backbone,
                   help="Hugging Face encoder name or local folder; 'none' for the spectrogram-only model")
    p.add_argument("--freeze", default=d.freeze, choices=["none", "feature_encoder", "backbone"])
    p.add_argument("--spectrogram", default=d.spectrogram, action=argparse.BooleanOptionalAction,
                   help="use the log-mel CNN branch")
    p.add_argument("--d_model", type=int, default=d.d_model)
    p.add_argument("--cnn_channels", type=lambda t: tuple(int(c) for c in t.split(",")),
                   default=d.cnn_channels, help="channels of the CNN blocks (default 32,64,128)")
    p.add_argument("--context_layers", type=int, default=d.context_layers)
    p.add_argument("--dropout", type=float, default=d.dropout)
    p.add_argument("--balance", default=d.balance, choices=["loss", "sampler", "none"],
                   help="class balancing by loss weights or by sampling")
    p.add_argument("--label_smoothing", type=float, default=d.label_smoothing)
    p.add_argument("--speaker_norm", default=d.speaker_norm, action=argparse.BooleanOptionalAction,
                   help="normalise inputs with each speaker's own unlabelled audio (default on)")
    p.add_argument("--descriptors", default=d.descriptors, action=argparse.BooleanOptionalAction,
                   help="clip descriptors (pitch, energy, MFCC statistics) beside the pooled vector (default on)")
    p.add_argument("--augment", default=d.augment, action=argparse.BooleanOptionalAction, help="waveform augmentation")
    p.add_argument("--spec_augment", default=d.spec_augment, action=argparse.BooleanOptionalAction)
    p.add_argument("--patience", type=int, default=d.patience, help="early stopping patience in epochs (0: off)")
    p.add_argument("--grad_clip", type=float, default=d.grad_clip)
    p.add_argument("--folds", type=int, default=None, help="actor-wise K-fold cross-validation")
    p.add_argument("--test_actors", help="fixed split test actors, e.g. 21-24 (default)")
    p.add_argument("--val_actors", help="fixed split validation actors, e.g. 19,20 (default)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last.pt")
    p.add_argument("--num_workers", type=int, default=d.num_workers, help="data-loader worker processes")
    p.add_argument("--quick", action="store_true", help="smoke run: two batches per epoch, two epochs")
    p.add_argument("--mixed_precision", default=d.mixed_precision, choices=["auto", "no", "fp16", "bf16"])
    p.add_argument("--no_progress", dest="progress", action="store_false", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ser_lib",
                                     description="Speech emotion recognition on RAVDESS (ser-course).")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", help="write the synthetic RAVDESS-layout corpus")
    p.add_argument("--out", help="target folder (default: the cache folder used when no dataset is given)")
    p.add_argument("--actors", type=int, default=24, help="number of actors, odd male / even female (default 24)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives identical files")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--examples", metavar="DIR", help="instead, write one example clip per emotion to DIR")
    p.add_argument("--example_actor", type=int, default=1, help="actor of the example clips (default 1)")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("download", help="download and extract RAVDESS speech (Zenodo 1188976)")
    p.add_argument("--root", default="dataset/RAVDESS", help="target folder (default dataset/RAVDESS)")
    p.add_argument("--url", help="another address for the same archive (a mirror)")
    p.add_argument("--md5", help="expected MD5 of the archive at --url")
    p.add_argument("--retries", type=int, default=5, help="resume attempts after a broken transfer")
    p.add_argument("--keep_archive", action="store_true", help="keep the zip after extraction")
    p.set_defaults(func=_cmd_download)

    p = sub.add_parser("index", help="summarise a dataset folder and report problem files")
    p.add_argument("--dataset_root", help="folder with Actor_XX/ sub-folders (default: the synthetic corpus)")
    p.add_argument("--all_modalities", action="store_true", help="keep song and video files too")
    p.add_argument("--strict", action="store_true", help="exit with status 1 when any file has a problem")
    p.add_argument("--csv", help="also write the clip table to this CSV file")
    p.set_defaults(func=_cmd_index)

    p = sub.add_parser("train", help="train a model (speaker-independent split or K folds)")
    _add_train_options(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="metrics, figures and an error-analysis report for a checkpoint")
    p.add_argument("--model_path", required=True,
                   help="a best_model.pt, a run folder, or a K-fold run folder (fold*/best_model.pt)")
    p.add_argument("--dataset_root", help="default: the dataset the model was trained on")
    p.add_argument("--actors", help="evaluate on these actors (e.g. 21,22) instead of the checkpoint's test actors")
    p.add_argument("--emotion_subset", choices=["all", "basic6", "basic4"],
                   help="must match the checkpoint's classes (checked)")
    p.add_argument("--output_dir", help="default: an evaluation/ folder beside the checkpoint")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--device", default="auto")
    p.add_argument("--no_progress", dest="progress", action="store_false")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("infer", help="predict emotions in a file or live from the microphone")
    p.add_argument("--model_path", help="a best_model.pt")
    p.add_argument("--input", help="an audio file: prints the per-window timeline")
    p.add_argument("--whole", action="store_true", help="with --input: one prediction for the whole file")
    p.add_argument("--mic", action="store_true", help="live from the microphone")
    p.add_argument("--device", help="microphone: index or name (see --list-devices)")
    p.add_argument("--list-devices", "--list_devices", dest="list_devices", action="store_true",
                   help="list input devices and exit")
    p.add_argument("--window", type=float, default=3.0, help="seconds of audio per prediction (default 3)")
    p.add_argument("--hop", type=float, default=0.5, help="seconds between predictions (default 0.5)")
    p.add_argument("--smoothing", type=float, default=0.5, help="weight of the newest window in the smoothing")
    p.add_argument("--text", action="store_true", help="text view even when a display is available")
    p.add_argument("--save-frames", "--save_frames", dest="save_frames", metavar="DIR",
                   help="draw the live window into DIR/frame_NNNNN.png")
    p.add_argument("--realtime", action="store_true", help="with --input: replay at real-time speed")
    p.add_argument("--max_seconds", type=float, default=None, help="stop after this much audio")
    p.add_argument("--compute_device", default="auto", help="where the model runs (auto, cpu, cuda)")
    p.add_argument("--adapt", nargs="+", metavar="FILE",
                   help="unlabelled clips of the speaker: learn their statistics first (speaker-normalised models)")
    p.add_argument("--optimize", default="none", choices=["none", "int8"],
                   help="int8: dynamic quantisation of linear layers (CPU)")
    p.set_defaults(func=_cmd_infer)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except SERError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
