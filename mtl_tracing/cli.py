"""Command line: ``mtl-tracing <command> ...`` (also ``python -m mtl_tracing``).

Each subcommand lives in its own module under ``mtl_tracing.commands`` and defines
``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``. Modules are
discovered automatically, so adding a command never edits this file.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

import mtl_tracing.commands as _commands

__all__ = ["main", "entry", "build_parser"]


def _command_modules():
    mods = []
    for info in pkgutil.iter_modules(_commands.__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{_commands.__name__}.{info.name}")
        if hasattr(mod, "NAME") and hasattr(mod, "run"):
            mods.append(mod)
    return sorted(mods, key=lambda m: m.NAME)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtl-tracing",
        description="Task-inference (tracing) attacks on multitask learning: theory, simulation.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in _command_modules():
        description = getattr(mod, "DESCRIPTION", mod.HELP)
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=description)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        # Bad input is reported on one line, never as a traceback.
        print(f"mtl-tracing {args.command}: error: {err}", file=sys.stderr)
        return 2


def enable_compilation_cache() -> str | None:
    """Keep compiled XLA programs on disk between runs (JAX's persistent compilation cache).

    A re-run, a resumed sweep or another job with the same shapes then skips compilation
    (12.1 s -> 4.6 s for a 2-cell sweep on a 2-core CPU, benchmarks/README.md). Folder:
    ``$MTL_TRACING_CACHE_DIR``, default ``~/.cache/mtl-tracing/xla``; set
    ``MTL_TRACING_NO_CACHE=1`` to turn it off. The cache key covers the program, the compile
    options, the device and the jax version, so a stale entry is never used. Returns the
    folder, or None when off.
    """
    if os.environ.get("MTL_TRACING_NO_CACHE", "") not in ("", "0"):
        return None
    path = os.environ.get("MTL_TRACING_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "mtl-tracing", "xla"
    )
    import jax

    jax.config.update("jax_compilation_cache_dir", path)
    return path


def entry() -> int:
    """The ``mtl-tracing`` executable: :func:`main` with the compilation cache on."""
    enable_compilation_cache()
    return main()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(entry())
