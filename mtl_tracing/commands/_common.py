"""Helpers shared by CLI subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["int_list", "float_list", "str_list", "enable_x64_if", "check_output_file"]


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def int_list(text: str) -> list[int]:
    try:
        return [int(t) for t in _split(text)]
    except ValueError as err:
        msg = f"expected comma-separated integers, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from err


def float_list(text: str) -> list[float]:
    try:
        return [float(t) for t in _split(text)]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from err


def str_list(text: str) -> list[str]:
    return _split(text)


def enable_x64_if(flag: bool) -> None:
    """Turn on float64 before any array is created (the ``--x64`` flag)."""
    if flag:
        import jax

        jax.config.update("jax_enable_x64", True)


def check_output_file(flag: str, path: str) -> Path:
    """``path`` as a Path, refused up front (``ValueError``) when it is an existing folder.

    Called before any computation, so a bad ``--json``/``--plot`` costs nothing and the folder
    is left as it was (for a folder given as ``--out``, see ``registry.check_out_dir``).
    """
    out = Path(path)
    if out.is_dir():
        raise ValueError(f"{flag} must be a file path, got the existing folder {path!r}")
    return out
