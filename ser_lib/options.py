"""Command-line options generated from settings dataclasses, so a default and its help live once.

Each field of a settings dataclass (:class:`~ser_lib.training.config.TrainConfig`,
:class:`~ser_lib.inference.streaming.StreamSettings`) becomes ``--name``, typed from its annotation,
with the field's ``help`` and ``choices`` metadata and its default shown. Booleans get
``--name/--no-name`` (``--no_name`` works too); tuples take comma-separated values (or, with
``append`` metadata, a repeated option); a field typed ``X | None`` takes ``none``. Nested settings (such as the augmentation strengths) become options named
with the field's ``prefix``. Options the user does not give are left out, so :func:`from_args`
builds the dataclass with its own defaults.
"""
from __future__ import annotations

import argparse
import types
import typing
from dataclasses import MISSING, fields, is_dataclass, replace

from .errors import SERError


def _default(f):
    return f.default_factory() if f.default is MISSING else f.default


def _show(value) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "none"
    return "none" if value is None else str(value)


def _unwrap_optional(kind) -> tuple[object, bool]:
    """``X | None`` -> ``(X, True)``; anything else -> ``(kind, False)``."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return kind, False


def _parser_for(kind, optional: bool, parse=None):
    """A function that turns the option's text into a value of ``kind``."""
    if parse is None and typing.get_origin(kind) is tuple:
        item = typing.get_args(kind)[0]
        parse = lambda text: tuple(item(part) for part in text.split(",") if part.strip())  # noqa: E731
    convert = parse or kind

    def parse_value(text: str):
        if optional and text.strip().lower() in ("none", ""):
            return None
        try:
            return convert(text)
        except (ValueError, SERError) as err:
            raise argparse.ArgumentTypeError(str(err) if isinstance(err, SERError) else f"cannot read {text!r}") from None

    return parse_value


def add_options(parser: argparse.ArgumentParser, cls, prefix: str = "", dest_prefix: str = "") -> None:
    """One option per field of the dataclass ``cls`` (recursing into nested settings)."""
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if f.metadata.get("cli") is False:
            continue
        kind, optional = _unwrap_optional(hints[f.name])
        dest = dest_prefix + f.name
        if is_dataclass(kind):
            add_options(parser, kind, prefix=f.metadata.get("prefix", ""), dest_prefix=dest + ".")
            continue
        name, default = prefix + f.name, _default(f)
        text = f"{f.metadata.get('help', '')} (default: {_show(default)})"
        if kind is bool:
            parser.add_argument(f"--{name}", dest=dest, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=text)
            parser.add_argument(f"--no_{name}", dest=dest, action="store_false", default=argparse.SUPPRESS,
                                help=argparse.SUPPRESS)
            continue
        if f.metadata.get("append"):  # repeatable: --dataset A --dataset B
            parser.add_argument(f"--{name}", dest=dest, action="append", default=argparse.SUPPRESS, help=text,
                                metavar=f.metadata.get("metavar", name.upper()))
            continue
        choices = f.metadata.get("choices")
        parser.add_argument(f"--{name}", dest=dest, type=_parser_for(kind, optional, f.metadata.get("parse")),
                            default=argparse.SUPPRESS, help=text, choices=choices,
                            metavar="{" + ",".join(map(str, choices)) + "}" if choices else name.upper())


def from_args(cls, args: argparse.Namespace):
    """An instance of ``cls`` with the options given on the command line (defaults for the rest)."""
    given = vars(args)
    values, nested = {}, {}
    for f in fields(cls):
        if f.name in given:
            values[f.name] = tuple(given[f.name]) if isinstance(given[f.name], list) else given[f.name]
        subvalues = {key.split(".", 1)[1]: value for key, value in given.items() if key.startswith(f.name + ".")}
        if subvalues:
            nested[f.name] = replace(_default(f), **subvalues)
    return cls(**values, **nested)
