"""``mtl-tracing cache``: where the persistent compilation cache is, its size, and clearing it."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

NAME = "cache"
HELP = "show the compilation cache (folder, entries, size) or --clear it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clear", action="store_true", help="delete every cached program")


def _usage(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else []
    return len(files), sum(p.stat().st_size for p in files)


def run(args: argparse.Namespace) -> int:
    import os

    from mtl_tracing.cli import CACHE_MAX_BYTES, cache_dir

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
