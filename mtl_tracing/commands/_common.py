"""Helpers shared by CLI subcommands: the old flag spellings, the x64 switch, output paths.

One flag name per concept across the commands: ``--out`` for every output path, ``--resamples``
for bootstrap resamples, ``--seed`` (default 0) for the random seed. A command that renamed a
flag keeps the old spelling for one release as a hidden alias (not in ``--help``), declared in
its ``ALIASES = {old: new}`` and added by :func:`add_option`; ``tests/test_cli.py`` pins each.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "add_option",
    "check_required",
    "enable_x64_if",
    "check_output_file",
]


def add_option(
    parser: argparse.ArgumentParser, flag: str, *, aliases: Mapping[str, str] = {}, **kwargs
) -> None:
    """``parser.add_argument(flag, **kwargs)``, plus every old spelling that ``aliases`` maps to
    ``flag`` as a hidden flag with the same destination.

    With aliases, ``required=True`` is checked after parsing (:func:`check_required`), so that
    an old spelling satisfies it: argparse would ask for ``flag`` itself.
    """
    old = [o for o, new in aliases.items() if new == flag]
    required = bool(kwargs.pop("required", False)) and bool(old)
    if required:
        kwargs["help"] = kwargs.get("help", "") + " (required)"
    action = parser.add_argument(flag, **kwargs)
    hidden = {k: v for k, v in kwargs.items() if k in ("type", "choices", "action", "nargs")}
    for name in old:
        parser.add_argument(
            name, dest=action.dest, help=argparse.SUPPRESS, default=argparse.SUPPRESS, **hidden
        )
    if required:
        before = parser.get_default("_required") or ()
        parser.set_defaults(_required=(*before, (action.dest, flag)))


def check_required(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``parser.error`` (usage and exit status 2, as argparse's own) when a flag made required
    by :func:`add_option` was given under no spelling."""
    missing = [flag for dest, flag in getattr(args, "_required", ()) if getattr(args, dest) is None]
    if missing:
        parser.error(f"the following arguments are required: {', '.join(missing)}")


def enable_x64_if(flag: bool) -> None:
    """Turn on float64 before any array is created (the ``--x64`` flag)."""
    if flag:
        import jax

        jax.config.update("jax_enable_x64", True)


def check_output_file(flag: str, path: str, suffix: str | None = None) -> Path:
    """``path`` as a Path, refused up front (``ValueError``) when it is an existing folder or,
    with ``suffix``, does not end in it.

    Called before any computation, so a bad ``--out``/``--plot`` costs nothing and the folder
    is left as it was (for a folder given as ``--out``, see ``registry.check_out_dir``).
    """
    out = Path(path)
    if out.is_dir():
        raise ValueError(f"{flag} must be a file path, got the existing folder {path!r}")
    if suffix is not None and out.suffix.lower() != suffix:
        raise ValueError(f"{flag} must end in {suffix}, got {path!r}")
    return out
