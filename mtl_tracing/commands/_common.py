"""Helpers shared by CLI subcommands.

The list parsers live in the library (:mod:`mtl_tracing.options`); they are re-exported here
for the commands.
"""

from __future__ import annotations

from pathlib import Path

from mtl_tracing.options import float_list, int_list, str_list

__all__ = ["int_list", "float_list", "str_list", "enable_x64_if", "check_output_file"]


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
