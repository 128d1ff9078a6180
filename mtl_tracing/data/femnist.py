"""FEMNIST (Caldas et al. 2019, LEAF) from its JSON shards, as ``MultitaskData``.

Folder layout read: every ``*.json`` under ``DIR`` (searched recursively, sorted by path), in
LEAF's layout (``data/femnist/data/all_data/all_data_*.json`` after LEAF's preprocessing, or its
``train/`` and ``test/`` folders)::

    {"users": ["f0000_14", ...], "num_samples": [154, ...],
     "user_data": {"f0000_14": {"x": [[784 floats in [0, 1]], ...], "y": [class in 0..61, ...]}}}

A writer may appear in several shards; the samples are concatenated in shard order.

Setting (App. A.6): ``personalization`` only, task = writer, label = LEAF's ``y``, the class of
the character in 0..61 (10 digits, 26 upper-case, 26 lower-case letters): 62-way character
recognition with one softmax head per writer, as the paper (``info["head_loss"] = "softmax"``,
``info["head_outputs"] = 62``). Paper: 128 + 128 writers, N = 128, H = 16.

Reading is streamed shard by shard: a first pass keeps only each writer's sample count, a second
decodes the selected writers' samples. With ``features_dir``, ``features_dir/<writer>/<j>.npy``
is the feature vector of the writer's j-th sample (0-based, in the order above).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from mtl_tracing.data import _tasks, cache
from mtl_tracing.data._tasks import TaskSpec
from mtl_tracing.data.base import MultitaskData

__all__ = ["CLASSES", "shards", "load"]

_PIXELS = 784
CLASSES = 62  #: FEMNIST's character classes (LEAF's y in 0..61)


def shards(data_dir: str | os.PathLike) -> list[Path]:
    """The sorted ``*.json`` files under ``data_dir``; ``ValueError`` if there are none."""
    root = _tasks.require_dir(data_dir, "FEMNIST folder")
    files = sorted(root.rglob("*.json"))
    if not files:
        raise ValueError(f"FEMNIST folder {os.fspath(root)!r} holds no *.json shard")
    return files


def _read(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            blob = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        msg = str(err).splitlines()[0]
        raise ValueError(f"cannot read {os.fspath(path)!r} as JSON: {msg}") from None
    if not isinstance(blob, dict) or not isinstance(blob.get("user_data"), dict):
        raise ValueError(f"{os.fspath(path)!r} has no 'user_data' object (not a LEAF shard)")
    return blob["user_data"]


def _user_arrays(path: Path, user: str, rec) -> tuple[np.ndarray, np.ndarray]:
    try:
        x = np.asarray(rec["x"], np.float32)
        y = np.asarray(rec["y"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            f"{os.fspath(path)!r}: user_data[{user!r}] must hold 'x' (n x 784 floats) and 'y'"
        ) from None
    if x.ndim != 2 or x.shape[1] != _PIXELS or y.shape != (x.shape[0],):
        raise ValueError(
            f"{os.fspath(path)!r}: user_data[{user!r}] must have x of shape (n, 784) and y of "
            f"shape (n,), got {x.shape} and {y.shape}"
        )
    if not np.issubdtype(y.dtype, np.integer) or y.min(initial=0) < 0 or y.max(initial=0) > 61:
        raise ValueError(f"{os.fspath(path)!r}: user_data[{user!r}].y must be classes in 0..61")
    return x, y.astype(np.int64)


def load(
    data_dir: str | os.PathLike,
    *,
    setting: str = "personalization",
    spec: TaskSpec,
    features_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
    dtype=np.float32,
) -> MultitaskData:
    """FEMNIST as ``MultitaskData`` (see the module docstring).

    Returns x (T, N, 28, 28, 1) in [0, 1] (or (T, N, D) features), y (T, N) int32 classes in
    0..61; ``info`` holds ``task_names`` (writers), ``sample_ids`` (global sample index) and the
    heads (``head_loss`` "softmax", ``head_outputs`` 62).
    """
    setting = _tasks.check_setting(setting)
    if setting != "personalization":
        raise ValueError(f"setting must be 'personalization' for FEMNIST, got {setting!r}")
    if not isinstance(spec, TaskSpec):
        raise ValueError(f"spec must be a TaskSpec, got {spec!r}")
    files = shards(data_dir)
    if features_dir is not None:
        _tasks.require_dir(features_dir, "features folder")
    options = {
        "setting": setting,
        "labels": "class62",
        "spec": spec.to_dict(),
        "features": os.path.abspath(features_dir) if features_dir else None,
    }

    def build():
        from tqdm.auto import tqdm

        # pass 1: per writer, its (shard, count) blocks and global sample ids
        blocks: dict[str, list] = {}
        total = 0
        for s, path in enumerate(tqdm(files, desc="FEMNIST shards", disable=not progress)):
            for user, rec in _read(path).items():
                n = len(rec.get("y", [])) if isinstance(rec, dict) else 0
                blocks.setdefault(user, []).append((s, total, n))
                total += n
        cands = {
            u: np.concatenate([np.arange(b, b + n) for _, b, n in bl]) for u, bl in blocks.items()
        }
        sel = _tasks.select_tasks(cands, spec, source=os.fspath(files[0].parent), what="writers")
        chosen = {name for name, _ in sel}

        def fetch(ids):
            if features_dir is not None:
                paths = []
                for i in ids:
                    u = owner[int(i)]
                    j = int(np.searchsorted(cands[u], i))
                    paths.append(Path(features_dir) / u / f"{j}.npy")
                return _tasks.read_features(paths, progress=progress)
            need = {s for u in chosen for s, _, _ in blocks[u]}
            pix, cls = {}, {}
            for s in tqdm(sorted(need), desc="FEMNIST decode", disable=not progress):
                data = _read(files[s])
                for u in chosen:
                    for s2, b, _ in blocks[u]:
                        if s2 == s:
                            x, y = _user_arrays(files[s], u, data[u])
                            for j in range(len(y)):
                                pix[b + j], cls[b + j] = x[j], y[j]
            labels_all.update(cls)
            return np.stack([pix[int(i)].reshape(28, 28, 1) for i in ids])

        owner = {int(i): u for u in chosen for i in cands[u]}
        labels_all: dict[int, int] = {}
        arrays = _tasks.assemble(sel, spec, fetch, lambda _n, ids: np.zeros(len(ids)))
        if features_dir is not None:  # labels still come from the shards
            need = {s for u in chosen for s, _, _ in blocks[u]}
            for s in sorted(need):
                data = _read(files[s])
                for u in chosen:
                    for s2, b, _ in blocks[u]:
                        if s2 == s:
                            y = _user_arrays(files[s], u, data[u])[1]
                            labels_all.update({b + j: int(c) for j, c in enumerate(y)})
        cls = np.vectorize(lambda i: labels_all[int(i)])(arrays["sample_ids"])
        arrays["y"] = cls.astype(np.int32)
        arrays["head_loss"] = np.asarray("softmax")
        arrays["head_outputs"] = np.asarray(CLASSES)
        return arrays

    def inputs():
        return cache.file_stamps(files)

    arrays = cache.cached_arrays(cache_dir, "femnist", options, inputs, build)
    return _tasks.to_multitask(arrays, dtype=dtype)
