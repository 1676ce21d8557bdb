"""Dataclass configs as the CLI: each field becomes an argparse option, its ``help`` metadata the help text.

A field with ``metadata={"positional": True}`` becomes a positional argument; ``list[str]`` takes one or
more values; ``bool`` becomes ``--flag/--no-flag``; ``float`` takes finite numbers only; ``choices`` in
metadata restricts the values.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import types
import typing
from typing import Any


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit status 2."""

    def error(self, message: str) -> typing.NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        sys.exit(2)


def finite_float(text: str) -> float:
    """argparse type of float options: a finite number (nan and inf are refused like any non-number)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


finite_float.__name__ = "float"  # argparse names the type in its message: "invalid float value: 'nan'"


def _base_type(tp: Any) -> tuple[Any, bool]:
    """Return (inner type, optional?) for ``X | None``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], True
    return tp, False


def add_dataclass_args(parser: argparse.ArgumentParser, cls: type) -> None:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp, _ = _base_type(hints[f.name])
        meta = dict(f.metadata)
        kwargs: dict[str, Any] = {"help": meta.get("help", "")}
        if "choices" in meta:
            kwargs["choices"] = meta["choices"]
        default = (
            f.default
            if f.default is not dataclasses.MISSING
            else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None  # type: ignore[misc]
            )
        )
        if typing.get_origin(tp) is list:
            kwargs["type"] = typing.get_args(tp)[0]
            kwargs["nargs"] = "+"
        elif tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = finite_float if tp is float else tp
        if meta.get("positional"):
            if "nargs" not in kwargs and f.default is not dataclasses.MISSING:
                kwargs["nargs"] = "?"
            parser.add_argument(f.name, default=default, metavar=f.name.upper(), **kwargs)
        else:
            if default is not None and kwargs.get("help") is not None:
                kwargs["help"] += f" (default: {default})"
            parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=default, **kwargs)


def from_args(cls: type, ns: argparse.Namespace):
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in vars(ns).items() if k in names})
