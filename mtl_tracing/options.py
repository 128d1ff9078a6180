"""Command-line options declared by the library: the :class:`Option` of every registry, and the
list parsers their ``type`` uses.

The registries (jobs :mod:`mtl_tracing.experiments.registry`, trainers
:mod:`mtl_tracing.victims.registry`, data sets :mod:`mtl_tracing.data.registry`) declare their
flags with :class:`Option`; the command line turns each into an ``argparse`` flag
(:func:`add_options`). Cheap to import (no JAX): ``mtl-tracing --help`` reads every option.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = ["Option", "add_options", "rename_error", "int_list", "float_list", "str_list"]


@dataclasses.dataclass(frozen=True)
class Option:
    """One command-line flag, passed on as a keyword argument (``--embed-dim`` -> ``embed_dim``).

    ``type`` converts the text (e.g. ``int``, ``float``, or :func:`int_list`; ``bool`` makes a
    switch that passes True); ``default=None`` means "the callee's own default" (the keyword is
    then not passed). ``kwarg`` names the
    keyword when it differs from the flag (``--resamples`` -> ``num_resamples``). ``field`` is
    the name the library's errors use for this value when it is neither (``--pgd-eps`` sets
    ``PGDConfig.eps``), so the command line can name the flag instead (:func:`rename_error`).
    """

    flag: str
    type: Callable[[str], Any] = str
    help: str = ""
    default: Any = None
    choices: Sequence[Any] | None = None
    kwarg: str | None = None
    field: str | None = None

    @property
    def dest(self) -> str:
        return self.kwarg or self.flag.lstrip("-").replace("-", "_")


def add_options(parser: argparse.ArgumentParser, options: Iterable[Option], **overrides) -> None:
    """Add each option as a flag (``choices`` kept); ``overrides`` go to every ``add_argument``."""
    for opt in options:
        kw = {"type": opt.type, "default": opt.default, "help": opt.help, "dest": opt.dest}
        if opt.type is bool:  # a switch: passed as True when given, else not at all
            kw = {"action": "store_const", "const": True, "default": None, "help": opt.help}
            kw["dest"] = opt.dest
        if opt.choices is not None:
            kw["choices"] = tuple(opt.choices)
        parser.add_argument(opt.flag, **{**kw, **overrides})


def rename_error(err: ValueError, options: Iterable[Option]) -> ValueError:
    """``err`` with its leading argument name replaced by the flag that set it, if one did.

    Library errors name the argument (``eps must be >= 0, got -1.0``); on the command line the
    user typed ``--pgd-eps``. Returns ``err`` itself when no option matches.
    """
    msg = str(err)
    for opt in options:
        for name in {opt.dest, opt.field or opt.dest}:
            if msg.startswith(name + " "):
                return ValueError(opt.flag + msg[len(name) :])
    return err


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def int_list(text: str) -> list[int]:
    """``"1,2, 5"`` -> ``[1, 2, 5]`` (an ``argparse`` type)."""
    try:
        return [int(t) for t in _split(text)]
    except ValueError as err:
        msg = f"expected comma-separated integers, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from err


def float_list(text: str) -> list[float]:
    """``"0.5,1"`` -> ``[0.5, 1.0]`` (an ``argparse`` type)."""
    try:
        return [float(t) for t in _split(text)]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from err


def str_list(text: str) -> list[str]:
    """``"a, b"`` -> ``["a", "b"]`` (an ``argparse`` type)."""
    return _split(text)
