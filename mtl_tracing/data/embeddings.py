"""The ``.npz`` embeddings format read by ``mtl-tracing attack`` (host I/O, NumPy).

Layout (one row per queried sample; task ids are any integers, shared between the IN arrays):

| array | shape | content |
|---|---|---|
| ``in_embeddings`` | (n_in, m) | h_theta(x), *training* samples of IN tasks (strong adversary) |
| ``in_task`` | (n_in,) int | task id of each row of ``in_embeddings`` |
| ``in_heldout_embeddings`` | (n_h, m) | optional: fresh samples of IN tasks (weak adversary) |
| ``in_heldout_task`` | (n_h,) int | optional: task id of each held-out row (must be IN task ids) |
| ``out_embeddings`` | (n_out, m) | fresh samples of OUT tasks (not used in training) |
| ``out_task`` | (n_out,) int | task id of each row of ``out_embeddings`` |

All embeddings share the same m and must be finite; every task needs >= 2 rows (>= k when a
challenge size k is given). The held-out pair is required only for the weak adversary; when
present, every IN task must have held-out rows and no other task may appear. Floating arrays
are kept in their dtype (float32 or float64). Write files with ``save_embeddings``.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mtl_tracing.threat import IN_ADVERSARIES as ADVERSARIES

__all__ = ["ADVERSARIES", "TaskPool", "EmbeddingSet", "load_embeddings", "save_embeddings"]


_REQUIRED = ("in_embeddings", "in_task", "out_embeddings", "out_task")
_HELDOUT = ("in_heldout_embeddings", "in_heldout_task")


class TaskPool(NamedTuple):
    """Embeddings grouped by task, padded with zeros to the largest task."""

    embeddings: np.ndarray  # (tasks, n_max, m)
    counts: np.ndarray  # (tasks,) int32, real rows per task
    task_ids: np.ndarray  # (tasks,) the ids, sorted


class EmbeddingSet(NamedTuple):
    """A loaded ``.npz``: IN training pools, optional IN held-out pools, OUT pools."""

    train_in: TaskPool  # strong adversary's pool for IN tasks
    heldout_in: TaskPool | None  # weak adversary's pool for IN tasks (same task order)
    out: TaskPool  # OUT tasks (fresh samples)

    def adversary_pools(self, adversary: str) -> tuple[TaskPool, TaskPool]:
        """(IN pool, OUT pool) of the ``"strong"`` or ``"weak"`` adversary."""
        if adversary not in ADVERSARIES:
            raise ValueError(f"adversary must be one of {ADVERSARIES}, got {adversary!r}")
        if adversary == "strong":
            return self.train_in, self.out
        if self.heldout_in is None:
            raise ValueError("weak adversary needs in_heldout_embeddings and in_heldout_task")
        return self.heldout_in, self.out


def _group(name: str, emb: np.ndarray, task: np.ndarray) -> TaskPool:
    ids, inverse, counts = np.unique(task, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(task.size) - np.repeat(starts, counts)  # position within its task
    padded = np.zeros((ids.size, int(counts.max()), emb.shape[1]), dtype=emb.dtype)
    padded[inverse[order], rank] = emb[order]
    return TaskPool(padded, counts.astype(np.int32), ids)


def _check_pair(data, emb_name: str, task_name: str, dim: int | None, min_rows: int) -> TaskPool:
    emb, task = data[emb_name], data[task_name]
    if emb.ndim != 2:
        raise ValueError(f"{emb_name} must have shape (rows, m), got shape {emb.shape}")
    if not np.issubdtype(emb.dtype, np.floating):
        raise ValueError(f"{emb_name} must be a float array, got dtype {emb.dtype}")
    if emb.shape[0] == 0 or emb.shape[1] == 0:
        raise ValueError(f"{emb_name} must be non-empty, got shape {emb.shape}")
    if dim is not None and emb.shape[1] != dim:
        raise ValueError(
            f"{emb_name} has embedding dimension {emb.shape[1]}, expected m={dim} "
            "(as in_embeddings)"
        )
    bad = int(emb.size - np.count_nonzero(np.isfinite(emb)))
    if bad:
        raise ValueError(f"{emb_name} must be finite, got {bad} non-finite value(s)")
    if task.ndim != 1:
        raise ValueError(f"{task_name} must have shape (rows,), got shape {task.shape}")
    if not np.issubdtype(task.dtype, np.integer):
        raise ValueError(f"{task_name} must hold integer task ids, got dtype {task.dtype}")
    if task.shape[0] != emb.shape[0]:
        raise ValueError(
            f"{task_name} has {task.shape[0]} ids but {emb_name} has {emb.shape[0]} rows"
        )
    pool = _group(emb_name, emb, task)
    small = pool.counts < min_rows
    if small.any():
        i = int(np.argmax(small))
        raise ValueError(
            f"{emb_name}: task {pool.task_ids[i]} has {pool.counts[i]} row(s), needs >= {min_rows}"
        )
    return pool


def load_embeddings(
    path: str | os.PathLike, *, adversary: str = "strong", challenge: int | None = None
) -> EmbeddingSet:
    """Load and validate an embeddings ``.npz`` (layout in the module docstring).

    Args:
      path: the ``.npz`` file.
      adversary: ``"strong"`` or ``"weak"``; ``"weak"`` requires the held-out arrays.
      challenge: k; if given, every task of the adversary's pools needs >= k rows (else >= 2).

    Returns:
      ``EmbeddingSet`` of per-task padded arrays and counts.

    Raises:
      ValueError: one-line message for a missing/unreadable file, a missing array, mismatched
        m, a task-id length mismatch, non-integer ids, a task with too few rows, NaN/inf, a wrong
        rank, or ``adversary="weak"`` without held-out arrays.
    """
    if adversary not in ADVERSARIES:
        raise ValueError(f"adversary must be one of {ADVERSARIES}, got {adversary!r}")
    if challenge is not None and (isinstance(challenge, bool) or int(challenge) != challenge):
        raise ValueError(f"challenge must be an integer, got {challenge!r}")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"embeddings file not found: {os.fspath(path)!r}")
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        with npz:
            data = {name: npz[name] for name in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"cannot read {os.fspath(path)!r} as .npz: {msg}") from None
    for name in _REQUIRED:
        if name not in data:
            raise ValueError(f"{os.fspath(path)!r} is missing the array {name!r}")
    has_heldout = [name in data for name in _HELDOUT]
    if any(has_heldout) and not all(has_heldout):
        missing = _HELDOUT[has_heldout.index(False)]
        raise ValueError(f"{os.fspath(path)!r} is missing the array {missing!r}")
    if adversary == "weak" and not all(has_heldout):
        raise ValueError(
            f"weak adversary needs in_heldout_embeddings and in_heldout_task in {os.fspath(path)!r}"
        )
    k = 2 if challenge is None else max(2, int(challenge))
    # The challenge size binds only the pools the adversary draws from.
    k_train = k if adversary == "strong" else 2
    k_held = k if adversary == "weak" else 2
    emb_in = data["in_embeddings"]
    dim = emb_in.shape[1] if emb_in.ndim == 2 else None
    train = _check_pair(data, "in_embeddings", "in_task", None, k_train)
    out = _check_pair(data, "out_embeddings", "out_task", dim, k)
    overlap = np.intersect1d(train.task_ids, out.task_ids)
    if overlap.size:
        raise ValueError(f"task id {overlap[0]} appears in both in_task and out_task")
    held = None
    if all(has_heldout):
        held = _check_pair(data, "in_heldout_embeddings", "in_heldout_task", dim, k_held)
        if held.task_ids.shape != train.task_ids.shape or np.any(held.task_ids != train.task_ids):
            raise ValueError(
                "in_heldout_task must contain exactly the IN task ids of in_task, got "
                f"{held.task_ids.size} ids for {train.task_ids.size} IN tasks"
            )
    return EmbeddingSet(train, held, out)


def save_embeddings(
    path: str | os.PathLike,
    *,
    in_embeddings,
    in_task,
    out_embeddings,
    out_task,
    in_heldout_embeddings=None,
    in_heldout_task=None,
) -> Path:
    """Write an embeddings ``.npz`` in the layout of the module docstring (uncompressed).

    Args: arrays as in the table: embeddings (rows, m) float, task ids (rows,) int. The held-out
    pair is optional (both or neither). Returns the path written. The file is validated by
    reading it back with ``load_embeddings`` before it is moved into place (a bad file is never
    written: ``ValueError`` instead).
    """
    if (in_heldout_embeddings is None) != (in_heldout_task is None):
        raise ValueError("in_heldout_embeddings and in_heldout_task must be given together")
    arrays = {
        "in_embeddings": np.asarray(in_embeddings),
        "in_task": np.asarray(in_task),
        "out_embeddings": np.asarray(out_embeddings),
        "out_task": np.asarray(out_task),
    }
    if in_heldout_embeddings is not None:
        arrays["in_heldout_embeddings"] = np.asarray(in_heldout_embeddings)
        arrays["in_heldout_task"] = np.asarray(in_heldout_task)
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"path must end in .npz, got {os.fspath(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **arrays)
    try:
        load_embeddings(tmp, adversary="weak" if in_heldout_embeddings is not None else "strong")
    except ValueError as err:
        tmp.unlink()
        raise ValueError(str(err).replace(repr(os.fspath(tmp)), repr(os.fspath(path)))) from None
    tmp.replace(path)
    return path
