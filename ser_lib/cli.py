"""Command line: ``python -m ser_lib SUBCOMMAND`` (or ``ser SUBCOMMAND``).

Each subcommand parses its options and calls the library; user mistakes (:class:`SERError`) are
printed as one clear message, without a traceback, with exit status 2. ``train``'s options are
generated from :class:`~ser_lib.training.config.TrainConfig` and ``infer``'s stream options from
:class:`~ser_lib.inference.streaming.StreamSettings` (:mod:`ser_lib.options`). ``--device`` is the
compute device everywhere; ``--mic_device`` picks the microphone.
"""
from __future__ import annotations

import argparse
import inspect
import logging
import sys
from pathlib import Path

from .errors import ConfigError, SERError

log = logging.getLogger("ser_lib")


def _cmd_synth(args: argparse.Namespace) -> int:
    from .data import corpora, synth

    if args.examples:
        written = synth.write_examples(args.examples, actor=args.example_actor, seed=args.seed)
        print(f"wrote {len(written)} example clips (one per emotion) to {args.examples}")
        return 0
    out = Path(args.out) if args.out else synth.corpus_dir(args.actors, args.seed)
    synth.generate(out, actors=args.actors, seed=args.seed, workers=args.workers)
    clips = corpora.index(out, "synthetic")
    print(f"synthetic corpus: {len(clips)} clips of {clips['speaker'].nunique()} actors in {out}")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from .data import download, voice

    if args.voice_encoder:
        if args.url or args.md5 or args.keep_archive:
            raise ConfigError("--url, --md5 and --keep_archive are for the RAVDESS archive, not --voice_encoder")
        print("the voice encoder's weights (the default model's descriptors, --descriptor_set ser+voice) are "
              f"{voice.check()} "
              f"(licence: {voice.WHEEL.licence}).")
        return 0
    resource = download.RAVDESS_SPEECH
    if args.url or args.md5:
        resource = download.Resource(url=args.url or resource.url, filename=resource.filename,
                                     md5=args.md5 or resource.md5, size=None if args.url else resource.size)
    root = download.download(args.root, resource, retries=args.retries, keep_archive=args.keep_archive,
                             max_bytes=int(args.max_extract_gb * 1e9))
    print(f"RAVDESS speech is in {root} (licence: {download.RAVDESS_SPEECH.licence}).")
    print(f"Next: python -m ser_lib index --dataset_root {root}")
    return 0


def _check_writable_file(path: Path, option: str) -> None:
    """Refuse, before any work, a file path that is a folder or lies under a file."""
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder: give a file name, e.g. {path / 'clips.csv'}")
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise ConfigError(f"{option} {path}: {blocking} is a file, not a folder")


def _cmd_index(args: argparse.Namespace) -> int:
    from .data import corpora

    datasets = corpora.datasets_of(args.dataset, args.dataset_root) or [corpora.Dataset("synthetic")]
    if args.csv:
        _check_writable_file(Path(args.csv), "--csv")
    adapters = {"ravdess": corpora.RAVDESS(speech_only=False)} if args.all_modalities else None
    result = corpora.scan(datasets, adapters=adapters)
    print(corpora.format_summary(result, ", ".join(map(str, datasets))))
    if args.csv:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        result.clips.to_csv(args.csv, index=False)
        print(f"\nclip table written to {args.csv}")
    return 1 if (args.strict and result.problems) else 0


def _cmd_train(args: argparse.Namespace) -> int:
    from . import options
    from .reports.summary import format_fold_summary
    from .training import TrainConfig, train

    config = options.from_args(TrainConfig, args)
    try:
        result = train(config)
    except KeyboardInterrupt:
        out = Path(config.output_dir).expanduser()
        saved = out.is_dir() and any(out.rglob("last.pt"))
        print(f"\ninterrupted: the last finished epoch is saved in {out}; continue with the same command plus "
              f"--resume" if saved else "\ninterrupted before the first epoch finished: nothing was saved",
              file=sys.stderr)
        return 130
    if config.folds:
        print(f"cross-validation ({config.emotion_subset}), {format_fold_summary(result)}")
        print(f"summary: {Path(config.output_dir) / 'summary.json'}")
    else:
        print(f"test ({config.emotion_subset}, actors of split {result['split']}): UAR {result['uar']:.3f}, "
              f"accuracy {result['accuracy']:.3f}, macro-F1 {result['macro_f1']:.3f} "
              f"(best epoch {result['best_epoch']})")
        print(f"model: {Path(config.output_dir) / 'best_model.pt'}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .data.corpora import datasets_of
    from .data.splits import parse_speakers
    from .reports import evaluation
    from .reports.summary import format_fold_summary

    targets = [Path(p) for p in args.model_path]
    target = targets[0]
    given = {k: getattr(args, k) for k in ("output_dir", "batch_size", "device") if hasattr(args, k)}
    given.update(overwrite=args.overwrite, adapt=args.adapt, adapt_emotions=args.adapt_emotions,
                 adapt_seed=args.adapt_seed, datasets=datasets_of(args.dataset, args.dataset_root))
    if len(targets) == 1 and target.is_dir() and evaluation.fold_checkpoints(target):
        if args.speakers or args.emotion_subset:
            print("error: --speakers and --emotion_subset apply to one checkpoint, not to a K-fold folder",
                  file=sys.stderr)
            return 2
        summary = evaluation.evaluate_folds(target, progress=args.progress, **given)
        print(format_fold_summary(summary))
        print(f"summary: {Path(given.get('output_dir') or target / 'evaluation') / 'summary.md'}")
        return 0
    result = evaluation.evaluate_checkpoint(targets[0] if len(targets) == 1 else targets,
                                            speakers=parse_speakers(args.speakers),
                                            emotion_subset=args.emotion_subset, progress=args.progress, **given)
    metrics = result.metrics
    print(f"ensemble of {len(targets)} models: " if len(targets) > 1 else "", end="")
    print(f"{len(metrics['speakers'])} speakers, {metrics['n_clips']} clips, {len(metrics['labels'])} classes: "
          f"UAR {metrics['uar']:.3f}, accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}, "
          f"ROC AUC {metrics['roc_auc_macro'] or float('nan'):.3f}, ECE {metrics['ece']:.3f}")
    for protocol, scores in (metrics.get("protocols") or {}).items():
        print(f"  {protocol.replace('_', ' ')}: UAR {scores['uar']:.3f}, accuracy {scores['accuracy']:.3f}")
    print(f"report: {result.folder / 'report.md'}")
    return 0


def _view(args: argparse.Namespace, labels: list[str]):
    """The terminal view, or the matplotlib window (or its frames, without a display)."""
    from .inference import live

    if args.text or (args.input and not args.save_frames):
        return live.TextView()
    if args.save_frames or live.has_display():
        return live.PlotView(labels, interactive=live.has_display() and not args.input, save_frames=args.save_frames)
    print("no display: showing the text view (use --save-frames DIR for pictures)", file=sys.stderr)
    return live.TextView()


def _print_prediction(name: str, prediction) -> None:
    print(f"{name}: {prediction.label} ({prediction.confidence:.2f})")
    for label, p in sorted(prediction.as_dict().items(), key=lambda kv: -kv[1]):
        print(f"  {label:<10} {p:.3f}  {'█' * int(round(p * 40))}")


def _cmd_infer(args: argparse.Namespace) -> int:
    from . import options
    from .inference import Ensemble, Predictor, StreamingPredictor, StreamSettings, live
    from .inference.streaming import run_stream

    if args.list_devices:
        print(live.format_devices(live.input_devices()))
        return 0
    if not args.model_path or bool(args.input) == bool(args.mic):
        print("error: give --model_path (a best_model.pt from `python -m ser_lib train`) and either "
              "--input FILE or --mic", file=sys.stderr)
        return 2
    missing = [f for f in args.adapt or [] if not Path(f).is_file()]
    if missing:
        print(f"error: --adapt: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    if len(args.model_path) == 1:
        predictor = Predictor.load(args.model_path[0], device=args.device, optimize=args.optimize)
    else:
        predictor = Ensemble.load(args.model_path, device=args.device, optimize=args.optimize)
        print(f"an ensemble of {len(args.model_path)} models: the mean of their probabilities", file=sys.stderr)
    if args.corpus:
        predictor.use_corpus(args.corpus)
    if args.adapt:
        predictor.adapt(args.adapt)
        print(f"adapted to the speaker of {len(args.adapt)} clip(s)", file=sys.stderr)
    if args.input and args.whole:
        _print_prediction(args.input, predictor.predict_file(args.input))
        return 0
    source = (live.FileSource(args.input, realtime=args.realtime) if args.input
              else live.MicrophoneSource(args.mic_device))
    stream = StreamingPredictor(predictor, source.sample_rate, options.from_args(StreamSettings, args))
    view = _view(args, predictor.labels)
    if args.mic:
        print(f"listening on {source.device if source.device is not None else 'the default microphone'} at "
              f"{source.sample_rate} Hz; Ctrl-C stops", file=sys.stderr)
    results = run_stream(stream, source, view, max_seconds=args.max_seconds)
    if args.input and source.wave.size < stream.first_prediction:  # the stream never predicted
        print(f"{args.input} is shorter than the first window ({stream.first_prediction / stream.sample_rate:g} s): "
              f"one prediction for the whole clip instead", file=sys.stderr)
        _print_prediction(args.input, predictor.predict_file(args.input))
        return 0
    spoken = sorted(r.latency_ms for r in results if r.speech)
    if spoken:
        print(f"{len(results)} hops, {len(spoken)} with speech; latency median {spoken[len(spoken) // 2]:.0f} ms",
              file=sys.stderr)
    return 0


def _default_of(function, name: str):
    return inspect.signature(function).parameters[name].default


def _add_dataset_options(p: argparse.ArgumentParser, default: str) -> None:
    from .data.corpora import CORPORA

    p.add_argument("--dataset", action="append", metavar="NAME=PATH",
                   help=f"a dataset ({', '.join(CORPORA)}), repeatable; {default}")
    p.add_argument("--dataset_root", help="a RAVDESS folder: the same as --dataset ravdess=PATH")


def _add_data_commands(sub) -> None:
    from .data import download

    p = sub.add_parser("synth", help="write the synthetic RAVDESS-layout corpus")
    p.add_argument("--out", help="target folder (default: the cache folder used when no dataset is given)")
    p.add_argument("--actors", type=int, default=24, help="number of actors, odd male / even female (default 24)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives identical files")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--examples", metavar="DIR", help="instead, write one example clip per emotion to DIR")
    p.add_argument("--example_actor", type=int, default=1, help="actor of the example clips (default 1)")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("download", help="download and extract RAVDESS speech (Zenodo 1188976), or the voice "
                                        "encoder's weights")
    p.add_argument("--voice_encoder", action="store_true",
                   help="instead, fetch the pretrained voice encoder's weights into the cache folder now (15.7 MB; "
                        "otherwise its first use does)")
    p.add_argument("--root", default="dataset/RAVDESS", help="target folder (default dataset/RAVDESS)")
    p.add_argument("--url", help="another address for the same archive (a mirror)")
    p.add_argument("--md5", help="expected MD5 of the archive at --url")
    p.add_argument("--retries", type=int, default=5, help="resume attempts after a broken transfer")
    p.add_argument("--keep_archive", action="store_true", help="keep the zip after extraction")
    p.add_argument("--max_extract_gb", type=float, default=download.MAX_EXTRACT_BYTES / 1e9,
                   help="refuse an archive that unpacks to more than this (default: %(default).1f GB)")
    p.set_defaults(func=_cmd_download)

    p = sub.add_parser("index", help="summarise a dataset folder and report problem files")
    _add_dataset_options(p, "default: the built-in synthetic corpus")
    p.add_argument("--all_modalities", action="store_true", help="RAVDESS: keep song and video files too")
    p.add_argument("--strict", action="store_true", help="exit with status 1 when any file has a problem")
    p.add_argument("--csv", help="also write the clip table to this CSV file")
    p.set_defaults(func=_cmd_index)


def _adapt_value(value: str) -> str:
    """``evaluate --adapt``: none, all or a number of clips."""
    from .model.enrolment import Enrolment

    try:
        return Enrolment.parse(value).key
    except SERError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _add_evaluate_command(sub) -> None:
    from .data.labels import SUBSETS
    from .reports.evaluation import evaluate_checkpoint

    p = sub.add_parser("evaluate", help="metrics, figures and an error-analysis report for a checkpoint "
                                        "(or an ensemble of several)")
    p.add_argument("--model_path", required=True, nargs="+", action="extend", metavar="PATH",
                   help="a best_model.pt, a run folder, or a K-fold run folder (fold*/best_model.pt); several "
                        "checkpoints: an ensemble, scored by the mean of their probabilities")
    _add_dataset_options(p, "default: the data the model was trained on; another corpus is scored over "
                            "the classes both share")
    p.add_argument("--speakers", help="evaluate on these speakers (e.g. 21,22 or cremad:1001-1010) instead of "
                                      "the checkpoint's test speakers (another corpus: all its speakers)")
    p.add_argument("--adapt", default="all", type=_adapt_value, metavar="none|all|K",
                   help="speaker statistics of the headline: all (each speaker's own, from all their clips), "
                        "none (cold start), or K (K random clips of the speaker, never the clip classified); a "
                        "speaker-normalised model's report also gives none and all (default: all)")
    p.add_argument("--adapt_emotions", metavar="NAMES",
                   help="enrol on clips of these emotions only, e.g. neutral (labels choose the clips, the model "
                        "never sees them)")
    p.add_argument("--adapt_seed", type=int, default=0, help="seed of the random enrolment clips (default: 0)")
    p.add_argument("--emotion_subset", choices=list(SUBSETS), help="must match the checkpoint's classes (checked)")
    p.add_argument("--output_dir", default=argparse.SUPPRESS,
                   help="default: evaluation/ beside the checkpoint (evaluation-CORPUS/ on another corpus, "
                        "evaluation-speakers-.../ with --speakers, ...-ensemble-N/ beside the first of N models)")
    p.add_argument("--batch_size", type=int, default=argparse.SUPPRESS,
                   help=f"clips per batch (default: {_default_of(evaluate_checkpoint, 'batch_size')})")
    p.add_argument("--device", default=argparse.SUPPRESS,
                   help=f"compute device (default: {_default_of(evaluate_checkpoint, 'device')})")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier evaluation in the output folder")
    p.add_argument("--no_progress", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(func=_cmd_evaluate)


def _add_infer_command(sub) -> None:
    from . import options
    from .inference import Predictor, StreamSettings

    p = sub.add_parser("infer", help="predict emotions in a file or live from the microphone")
    p.add_argument("--model_path", nargs="+", action="extend", metavar="PATH",
                   help="a best_model.pt (or its run folder), or a model.onnx from `export` (runs on "
                        "onnxruntime); several: an ensemble, the mean of their probabilities (models of the same "
                        "classes and --speaker_norm)")
    p.add_argument("--input", help="an audio file: prints the per-window timeline")
    p.add_argument("--whole", action="store_true", help="with --input: one prediction for the whole file")
    p.add_argument("--mic", action="store_true", help="live from the microphone")
    p.add_argument("--mic_device", help="microphone: index or name (see --list-devices)")
    p.add_argument("--list-devices", "--list_devices", dest="list_devices", action="store_true",
                   help="list input devices and exit")
    options.add_options(p, StreamSettings)
    p.add_argument("--text", action="store_true", help="text view even when a display is available")
    p.add_argument("--save-frames", "--save_frames", dest="save_frames", metavar="DIR",
                   help="draw the live window into DIR/frame_NNNNN.png")
    p.add_argument("--realtime", action="store_true", help="with --input: replay at real-time speed")
    p.add_argument("--max_seconds", type=float, default=None, help="stop after this much audio")
    p.add_argument("--device", default=_default_of(Predictor.from_checkpoint, "device"),
                   help="compute device: auto, cpu, cuda or mps (default: %(default)s)")
    p.add_argument("--adapt", nargs="+", metavar="FILE",
                   help="unlabelled clips of the speaker: learn their statistics first (speaker-normalised models)")
    p.add_argument("--optimize", default="none", choices=["none", "int8"],
                   help="int8: dynamic quantisation of linear layers (CPU)")
    p.add_argument("--corpus", help="the training corpus the audio comes from (e.g. ravdess): a model trained on "
                                    "several corpora starts the voice from that corpus's statistics, not the "
                                    "pooled ones")
    p.set_defaults(func=_cmd_infer)


def _cmd_export(args: argparse.Namespace) -> int:
    from .model.export import export_onnx

    if str(args.model_path).endswith(".onnx"):
        print(f"quantising {args.model_path} to {args.output} ({args.quantize})...", file=sys.stderr)
    else:
        print(f"exporting {args.model_path} to {args.output} (ONNX, opset {args.opset}"
              f"{', int8' if args.quantize == 'int8' else ''})...", file=sys.stderr)
    summary = export_onnx(args.model_path, args.output, quantize=args.quantize, opset=args.opset)
    check = summary["check"]
    print(f"wrote {summary['output']} ({summary['bytes'] / 1e6:.1f} MB): inputs {', '.join(summary['inputs'])}; "
          f"outputs {', '.join(summary['outputs'])}; labels {', '.join(summary['labels'])}")
    print(f"onnxruntime against {check['reference']} on {', '.join(f'{s:g}' for s in check['seconds'])} s inputs: "
          f"largest probability difference {check['max_prob_diff']:.2g}, "
          f"{'the same' if check['same_top_emotion'] else 'NOT always the same'} top emotion")
    print(f"use it: python -m ser_lib infer --model_path {summary['output']} --input clip.wav")
    return 0


def _add_export_command(sub) -> None:
    from .model.export import OPSET, QUANTIZE

    p = sub.add_parser("export", help="export a trained model to ONNX (runs without PyTorch)")
    p.add_argument("--model_path", required=True,
                   help="a best_model.pt (or, with --quantize int8, a float32 .onnx export to quantise)")
    p.add_argument("--format", default="onnx", choices=["onnx"], help="export format (default: %(default)s)")
    p.add_argument("--output", required=True, help="the .onnx file to write")
    p.add_argument("--quantize", default="none", choices=QUANTIZE,
                   help="int8: dynamic quantisation of the matrix multiplications (default: %(default)s)")
    p.add_argument("--opset", type=int, default=OPSET, choices=range(18, 24), metavar="18..23",
                   help="ONNX opset (default: %(default)s)")
    p.set_defaults(func=_cmd_export)


def build_parser() -> argparse.ArgumentParser:
    from . import options
    from .training import TrainConfig

    parser = argparse.ArgumentParser(prog="python -m ser_lib",
                                     description="Speech emotion recognition on RAVDESS (ser-course).")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_data_commands(sub)
    p = sub.add_parser("train", help="train a model (speaker-independent split or K folds)")
    options.add_options(p, TrainConfig)
    p.set_defaults(func=_cmd_train)
    _add_evaluate_command(sub)
    _add_infer_command(sub)
    _add_export_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s: %(message)s")
    command = argparse.Namespace(**{k: v for k, v in vars(args).items() if k not in ("verbose", "command", "func")})
    try:
        return int(args.func(command) or 0)
    except SERError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
