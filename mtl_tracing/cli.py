"""Command line: ``mtl-tracing <command> ...`` (also ``python -m mtl_tracing``).

Two kinds of subcommand, neither of which edits this file to add:

- hand-written commands (``game``, ``sweep``, ``attack``, ``verify``, ``plot-sweep``,
  ``reproduce``), one module each under ``mtl_tracing.commands`` defining ``NAME``, ``HELP``,
  ``add_arguments(parser)`` and ``run(args) -> int``, discovered automatically;
- one command per job of :data:`mtl_tracing.experiments.registry.JOBS` (``figure7``,
  ``figure3``, ...), with the job's flags (:func:`registry.add_job_arguments`); it runs the job,
  prints its headline and the written paths, and checks the output.

Building the parser imports no JAX (the job modules import it when they run), so ``--help`` is
fast. Bad input and unusable paths (any ``OSError``) end in one line, ``mtl-tracing CMD: error:
...``, and exit status 2.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import pkgutil
import sys

import mtl_tracing.commands as _commands
from mtl_tracing.experiments import registry

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
    for job in registry.JOBS:
        if not job.command:
            continue
        p = sub.add_parser(job.name, aliases=job.aliases, help=job.help, description=job.help)
        registry.add_job_arguments(p, job)
        p.set_defaults(_run=functools.partial(_run_job, job))
    return parser


def _run_job(job: registry.Job, args: argparse.Namespace) -> int:
    return registry.main_from_args(job, args, prog=f"mtl-tracing {args.command}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (ValueError, OSError) as err:
        # Bad input and unusable paths are reported on one line, never as a traceback.
        print(f"mtl-tracing {args.command}: error: {err}", file=sys.stderr)
        return 2


#: Default size limit of the persistent compilation cache (least recently used entries go).
CACHE_MAX_BYTES = 2 * 2**30


def cache_dir() -> str:
    """``$MTL_TRACING_CACHE_DIR``, default ``~/.cache/mtl-tracing/xla``."""
    return os.environ.get("MTL_TRACING_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "mtl-tracing", "xla"
    )


def enable_compilation_cache() -> str | None:
    """Keep compiled XLA programs on disk between runs (JAX's persistent compilation cache).

    A re-run, a resumed sweep or another job with the same shapes then skips compilation
    (benchmarks/README.md, ``bench_startup.py``). Folder: :func:`cache_dir`; set
    ``MTL_TRACING_NO_CACHE=1`` to turn it off. Every program is cached, however fast it
    compiled (JAX's default skips those under 1 s, which are most of a small run's). The
    cache is capped at ``$MTL_TRACING_CACHE_MAX_MB`` (default 2048 MiB; least recently used
    entries are evicted, via ``filelock``); ``mtl-tracing cache --clear`` empties it. The key
    covers the program, the compile options, the device and the jax version, so a stale entry
    is never used. Configured through JAX's environment variables, so JAX is not imported
    here (``mtl-tracing --help`` stays fast). Returns the folder, or None when off.
    """
    if os.environ.get("MTL_TRACING_NO_CACHE", "") not in ("", "0"):
        return None
    path = cache_dir()
    max_mb = os.environ.get("MTL_TRACING_CACHE_MAX_MB")
    max_bytes = CACHE_MAX_BYTES if not max_mb else int(float(max_mb) * 2**20)
    options = {
        "jax_compilation_cache_dir": path,
        "jax_persistent_cache_min_compile_time_secs": 0.0,
        "jax_persistent_cache_min_entry_size_bytes": 0,
        "jax_compilation_cache_max_size": max_bytes,
    }
    if "jax" in sys.modules:  # already imported (e.g. a test): set the live config
        import jax

        for name, value in options.items():
            jax.config.update(name, value)
    else:
        for name, value in options.items():
            os.environ.setdefault(name.upper(), str(value))
    return path


def entry() -> int:
    """The ``mtl-tracing`` executable: :func:`main` with the compilation cache on."""
    enable_compilation_cache()
    return main()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(entry())
