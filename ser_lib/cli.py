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
