"""``mtl-tracing cache``: JAX's persistent compilation cache, which the ``mtl-tracing``
executable turns on (:func:`enable_compilation_cache`): where it is, its size, clearing it."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

__all__ = ["CACHE_MAX_BYTES", "cache_dir", "enable_compilation_cache"]

NAME = "cache"
HELP = "Show the compilation cache (folder, entries, size) or --clear it."


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clear", action="store_true", help="delete every cached program")


def _usage(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else []
    return len(files), sum(p.stat().st_size for p in files)


def run(args: argparse.Namespace) -> int:
    path = Path(cache_dir())
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"the cache path {path} is not a folder")
    if args.clear:
        n, size = _usage(path)
        if path.is_dir():
            shutil.rmtree(path)
        print(f"cleared {path}: {n} files, {size / 2**20:.1f} MiB")
        return 0
    n, size = _usage(path)
    print(f"folder   {path}{'' if path.is_dir() else ' (not created yet)'}")
    print(f"entries  {n} files, {size / 2**20:.1f} MiB")
    limit = os.environ.get("MTL_TRACING_CACHE_MAX_MB") or f"{CACHE_MAX_BYTES / 2**20:.0f}"
    print(f"limit    {limit} MiB ($MTL_TRACING_CACHE_MAX_MB); MTL_TRACING_NO_CACHE=1 turns it off")
    return 0
