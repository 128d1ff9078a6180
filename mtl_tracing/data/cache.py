"""A cache of decoded loader arrays (``.npz``), keyed by the loader's options and its inputs.

The key is the SHA-256 of a canonical JSON of ``{loader, options, inputs}``, where ``inputs``
lists every file the loader read with its size and modification time (so an edited file misses
the cache). Files are written atomically: the arrays go to a temporary file in the cache folder,
which is renamed into place only after it is complete. A failing build, or an error while
writing, leaves no file behind (the temporary file is removed).

Default folder: ``$MTL_TRACING_DATA_CACHE``, else ``~/.cache/mtl-tracing/data``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

__all__ = ["default_cache_dir", "file_stamps", "cache_key", "cached_arrays"]


def default_cache_dir() -> Path:
    """``$MTL_TRACING_DATA_CACHE`` or ``~/.cache/mtl-tracing/data``."""
    env = os.environ.get("MTL_TRACING_DATA_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "mtl-tracing" / "data"


def file_stamps(paths: Iterable[str | os.PathLike]) -> list[list]:
    """``[[absolute path, size, mtime_ns], ...]`` of existing files (sorted), for the cache key."""
    out = []
    for p in sorted({os.path.abspath(os.fspath(p)) for p in paths}):
        st = os.stat(p)
        out.append([p, int(st.st_size), int(st.st_mtime_ns)])
    return out


def cache_key(loader: str, options: dict, inputs: list) -> str:
    """Hex SHA-256 of the canonical JSON of the loader name, its options and input stamps."""
    blob = json.dumps({"loader": loader, "options": options, "inputs": inputs}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _atomic_savez(path: Path, arrays: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def cached_arrays(
    cache_dir: str | os.PathLike | None,
    loader: str,
    options: dict,
    inputs: Callable[[], list],
    build: Callable[[], dict],
) -> dict:
    """The arrays of ``build()``, read from / written to the cache when ``cache_dir`` is given.

    Args:
      cache_dir: the cache folder, or None for no cache.
      loader: the loader's name (part of the key and of the file name).
      options: JSON-ready options that determine the arrays.
      inputs: returns the input stamps (:func:`file_stamps`); called before ``build``.
      build: returns ``{name: np.ndarray}`` (no object arrays).
    """
    if cache_dir is None:
        return build()
    path = Path(cache_dir) / f"{loader}-{cache_key(loader, options, inputs())}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    arrays = build()
    _atomic_savez(path, arrays)
    return arrays
