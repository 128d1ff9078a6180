"""Shared by the real-data loaders: task selection (the paper's filters), assembly into
``MultitaskData``, user-provided feature files, and one-line input errors.

Selection (App. A.5). A task qualifies when it has at least ``samples + heldout`` samples (N
training samples for the IN heads and the strong adversary, H held-out samples for the weak
adversary); for the "multiple problems" setting, when it has at least ceil((N + H) / 2)
positives and as many negatives (each task's samples are drawn half positive, half negative,
so both labels are present). Qualifying tasks are sorted by name; ``tasks + out_tasks`` of them
are drawn with ``numpy.random.default_rng(seed)``; the first ``tasks`` drawn are IN, the rest
OUT; each task's N + H samples are drawn without replacement and shuffled, the first N are its
training (pool) samples and the last H its held-out samples. Everything depends only on the
seed and the data, never on reading order.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mtl_tracing._validate import (
    check_choice,
    check_int_fields,
)
from mtl_tracing.data.base import MultitaskData

__all__ = [
    "SETTINGS",
    "TaskSpec",
    "require_file",
    "require_dir",
    "select_tasks",
    "select_balanced",
    "assemble",
    "to_multitask",
    "read_features",
]

SETTINGS = ("personalization", "problems")


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """The filters common to all loaders: T IN, T_out OUT tasks, N + H samples each, a seed."""

    tasks: int
    out_tasks: int
    samples: int
    heldout: int
    seed: int = 0

    def __post_init__(self) -> None:
        check_int_fields(self, tasks=2, out_tasks=1, samples=2, heldout=2, seed=0)

    @property
    def per_task(self) -> int:
        return self.samples + self.heldout

    @property
    def total_tasks(self) -> int:
        return self.tasks + self.out_tasks

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def check_setting(setting: str) -> str:
    return check_choice("setting", setting, SETTINGS)


def require_dir(path: str | os.PathLike, what: str) -> Path:
    """``Path(path)`` if it is a folder; else a one-line ``ValueError`` naming it."""
    p = Path(path)
    if not p.is_dir():
        raise ValueError(f"{what} not found: {os.fspath(p)!r} is not a folder")
    return p


def require_file(path: str | os.PathLike, what: str) -> Path:
    """``Path(path)`` if it is a file; else a one-line ``ValueError`` naming it."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{what} not found: {os.fspath(p)!r}")
    return p


def _too_few(source: str, what: str, found: int, need_each: str, spec: TaskSpec) -> ValueError:
    return ValueError(
        f"{source}: only {found} {what} qualify ({need_each}), but tasks + out_tasks = "
        f"{spec.tasks} + {spec.out_tasks} = {spec.total_tasks} are needed"
    )


def select_tasks(
    candidates: dict, spec: TaskSpec, *, source: str, what: str = "tasks"
) -> list[tuple[str, np.ndarray]]:
    """Draw T + T_out tasks with >= N + H samples, and N + H samples of each (module docstring).

    Args:
      candidates: ``{task name: (n,) int array of sample ids}``.
      spec: the filters and the seed.
      source: the file named in the error when too few tasks qualify.
      what: the noun for the tasks in that error ("identities", "writers", ...).

    Returns:
      ``[(name, ids (N + H,))]``, IN tasks first.
    """
    need = spec.per_task
    names = sorted(n for n, ids in candidates.items() if len(ids) >= need)
    if len(names) < spec.total_tasks:
        raise _too_few(source, what, len(names), f">= {need} samples each", spec)
    rng = np.random.default_rng(spec.seed)
    chosen = [names[i] for i in rng.permutation(len(names))[: spec.total_tasks]]
    out = []
    for name in chosen:
        ids = np.asarray(candidates[name])
        out.append((name, rng.choice(ids, size=need, replace=False)))
    return out


def select_balanced(
    positives: dict,
    universe: np.ndarray,
    spec: TaskSpec,
    *,
    source: str,
    what: str = "tasks",
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Multiple problems: per task ceil((N+H)/2) positives and the rest negatives, shuffled.

    Args:
      positives: ``{task name: (n_pos,) int array of the sample ids labelled 1 for the task}``.
      universe: (n,) int array of all sample ids (negatives are the ones not in ``positives``).
      spec, source, what: as in :func:`select_tasks`.

    Returns:
      ``[(name, ids (N + H,), labels (N + H,) float32)]``, IN tasks first.
    """
    need = spec.per_task
    n_pos = -(-need // 2)
    n_neg = need - n_pos
    universe = np.unique(np.asarray(universe))
    names = sorted(
        n
        for n, ids in positives.items()
        if len(np.unique(ids)) >= n_pos and universe.size - len(np.unique(ids)) >= n_neg
    )
    if len(names) < spec.total_tasks:
        raise _too_few(
            source, what, len(names), f">= {n_pos} positive and >= {n_neg} negative samples", spec
        )
    rng = np.random.default_rng(spec.seed)
    chosen = [names[i] for i in rng.permutation(len(names))[: spec.total_tasks]]
    out = []
    for name in chosen:
        pos = np.unique(positives[name])
        neg = np.setdiff1d(universe, pos, assume_unique=True)
        ids = np.concatenate(
            [rng.choice(pos, n_pos, replace=False), rng.choice(neg, n_neg, replace=False)]
        )
        labels = np.concatenate([np.ones(n_pos, np.float32), np.zeros(n_neg, np.float32)])
        perm = rng.permutation(need)
        out.append((name, ids[perm], labels[perm]))
    return out


def assemble(
    selection: Sequence[tuple],
    spec: TaskSpec,
    fetch: Callable[[np.ndarray], np.ndarray],
    label: Callable[[str, np.ndarray], np.ndarray] | None = None,
) -> dict:
    """Fetch the selected samples once each and lay them out as (2T, N + H, *F) arrays.

    Args:
      selection: from :func:`select_tasks` (labels from ``label``) or :func:`select_balanced`.
      spec: the filters.
      fetch: ``unique ids (n,) -> features (n, *F)`` (reads only these samples).
      label: ``(task name, ids) -> (len(ids),) labels``, for :func:`select_tasks` selections
        (float {0, 1}; or int classes, or (len(ids), C) multi-hot: the dtype is kept).

    Returns:
      ``{"x": (T + T_out, N + H, *F), "y": (T + T_out, N + H) float32 (or as ``label``),
      "task_names": (T + T_out,) str, "sample_ids": (T + T_out, N + H) int64, "tasks": T}``.
    """
    names = [s[0] for s in selection]
    ids = np.stack([np.asarray(s[1], np.int64) for s in selection])
    if len(selection[0]) == 3:
        y = np.stack([np.asarray(s[2], np.float32) for s in selection])
    else:
        y = np.stack([np.asarray(label(n, i)) for n, i in zip(names, ids, strict=True)])
        if not np.issubdtype(y.dtype, np.integer):
            y = y.astype(np.float32)
    uniq, inv = np.unique(ids, return_inverse=True)
    feats = np.asarray(fetch(uniq))
    x = feats[inv.reshape(-1)].reshape(ids.shape + feats.shape[1:])
    return {
        "x": x,
        "y": y,
        "task_names": np.asarray(names, dtype=str),
        "sample_ids": ids,
        "tasks": np.asarray(spec.tasks),
        "samples": np.asarray(spec.samples),
    }


def to_multitask(arrays: dict, *, dtype=np.float32, scale: float | None = None) -> MultitaskData:
    """``MultitaskData`` from :func:`assemble`'s arrays (uint8 images scaled by ``scale``).

    ``info`` keeps ``task_names`` (T + T_out,) and ``sample_ids`` (T + T_out, N + H), IN first,
    and the heads the labels call for (:mod:`mtl_tracing.victims.heads`): ``head_loss`` and
    ``head_outputs`` from the arrays (default ``"binary"``, 1). Integer labels stay int32.
    """
    T, N = int(arrays["tasks"]), int(arrays["samples"])
    x = np.asarray(arrays["x"]).astype(dtype)
    if scale is not None:
        x *= np.asarray(scale, dtype=x.dtype)
    y = np.asarray(arrays["y"])
    y = y.astype(np.int32 if np.issubdtype(y.dtype, np.integer) else dtype)
    info = {
        "task_names": arrays["task_names"],
        "sample_ids": arrays["sample_ids"],
        "head_loss": np.asarray(arrays.get("head_loss", "binary")),
        "head_outputs": np.asarray(arrays.get("head_outputs", 1)),
    }
    return MultitaskData(
        x[:T, :N], y[:T, :N], x[T:, :N], y[T:, :N], x[:T, N:], y[:T, N:], x[T:, N:], y[T:, N:], info
    )


def read_features(paths: Sequence[str | os.PathLike], *, progress: bool = False) -> np.ndarray:
    """Stack user-provided feature files, one ``.npy`` per sample: (n, D) float32.

    Each file is opened memory-mapped and must hold a finite float vector (any shape, flattened);
    all must have the same size. Errors name the file.
    """
    from tqdm.auto import tqdm

    out = None
    for i, p in enumerate(tqdm(paths, desc="features", unit="file", disable=not progress)):
        if not os.path.isfile(p):
            raise ValueError(f"feature file not found: {os.fspath(p)!r}")
        try:
            a = np.load(p, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as err:
            msg = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ValueError(f"cannot read {os.fspath(p)!r} as .npy: {msg}") from None
        if not np.issubdtype(a.dtype, np.number):
            raise ValueError(f"{os.fspath(p)!r} must hold numbers, got dtype {a.dtype}")
        v = np.asarray(a, np.float32).reshape(-1)
        if out is None:
            out = np.empty((len(paths), v.size), np.float32)
        if v.size != out.shape[1]:
            raise ValueError(
                f"{os.fspath(p)!r} has {v.size} features, expected {out.shape[1]} "
                f"(as {os.fspath(paths[0])!r})"
            )
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{os.fspath(p)!r} must be finite, got non-finite values")
        out[i] = v
    return out
