"""The sweep spec: the product of value lists of the Gaussian game's config fields, times seeds.

Notation as in :mod:`mtl_tracing.gaussian.config`: T ``tasks``, N ``samples``, d ``dim``, k
``challenge``, sbar ``task_std``, s ``sample_std``, mu_bar ``mean`` (scalar), G ``games``.
A *cell* is one (config, seed); its ``cell_id`` is its index in the canonical product order of
the *full* spec (tasks, samples, dim, challenge, task_std, sample_std, mean, seed; last
fastest), and its key is ``fold_in(key(root_seed), cell_id)``.

What the engine reads of a spec (a new game's spec provides the same): ``cells()``,
``games``, ``root_seed``, ``num_cells``, ``fingerprint(dtype)``, ``to_dict()``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from mtl_tracing import results
from mtl_tracing._validate import check_choice, check_finite_float, check_int, check_probability
from mtl_tracing.gaussian.config import GaussianGameConfig
from mtl_tracing.threat import IN_ADVERSARIES as ADVERSARIES

__all__ = [
    "ADVERSARIES",
    "CONFIG_FIELDS",
    "SHAPE_FIELDS",
    "TRACED_FIELDS",
    "SweepSpec",
    "cell_table",
]

CONFIG_FIELDS = ("tasks", "samples", "dim", "challenge", "task_std", "sample_std", "mean")
SHAPE_FIELDS = ("tasks", "samples", "dim", "challenge")
TRACED_FIELDS = ("task_std", "sample_std", "mean")


def _as_tuple(name: str, values: Any) -> tuple:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
        values = (values,)
    values = tuple(values)
    if not values:
        raise ValueError(f"{name} must be a non-empty list, got {values!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"{name} must not contain duplicates, got {values!r}")
    return values


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A sweep: the product of the value lists times ``seeds``, with ``games`` per cell.

    Fields are tuples of values (a scalar is accepted as a one-element list). ``mean`` values
    are scalars mu_bar. Validated on construction; errors name the field and the value.
    """

    tasks: tuple[int, ...] = (256,)
    samples: tuple[int, ...] = (8,)
    dim: tuple[int, ...] = (256,)
    challenge: tuple[int, ...] = (4,)
    task_std: tuple[float, ...] = (1.0,)
    sample_std: tuple[float, ...] = (1.0,)
    mean: tuple[float, ...] = (0.0,)
    seeds: tuple[int, ...] = (0,)
    games: int = 500
    adversaries: tuple[str, ...] = ADVERSARIES
    sampler: str = "sufficient"
    fpr: float = 0.01
    level: float = 0.95
    num_resamples: int = 200
    root_seed: int = 0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("tasks", "samples", "dim", "challenge"):
            vals = _as_tuple(name, getattr(self, name))
            set_(self, name, tuple(check_int(name, v, low=1) for v in vals))
        for name in ("task_std", "sample_std"):
            vals = _as_tuple(name, getattr(self, name))
            vals = tuple(check_finite_float(name, v) for v in vals)
            for v in vals:
                if v < 0.0:
                    raise ValueError(f"{name} must be >= 0, got {v!r}")
            set_(self, name, vals)
        means = _as_tuple("mean", self.mean)
        set_(self, "mean", tuple(check_finite_float("mean", v) for v in means))
        seeds = _as_tuple("seeds", self.seeds)
        set_(self, "seeds", tuple(check_int("seeds", v, low=0, high=2**32 - 1) for v in seeds))
        if max(self.challenge) > min(self.samples):
            raise ValueError(
                "challenge must be <= samples (k <= N) for every combination, got "
                f"challenge={max(self.challenge)} > samples={min(self.samples)}"
            )
        set_(self, "games", check_int("games", self.games, low=2))
        advs = _as_tuple("adversaries", self.adversaries)
        set_(self, "adversaries", tuple(check_choice("adversaries", a, ADVERSARIES) for a in advs))
        check_choice("sampler", self.sampler, ("sufficient", "faithful"))
        set_(self, "fpr", check_probability("fpr", self.fpr))
        set_(self, "level", check_probability("level", self.level))
        set_(self, "num_resamples", check_int("num_resamples", self.num_resamples, low=2))
        set_(self, "root_seed", check_int("root_seed", self.root_seed, low=0, high=2**32 - 1))

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> SweepSpec:
        return cls(**d)

    def fingerprint(self, dtype) -> str:
        """Hash of everything that determines the numbers (spec and dtype)."""
        payload = json.dumps(
            {"spec": results.to_jsonable(self.to_dict()), "dtype": jnp.dtype(dtype).name},
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def num_cells(self) -> int:
        return math.prod(len(getattr(self, f)) for f in CONFIG_FIELDS) * len(self.seeds)

    def cells(self) -> list[tuple[int, GaussianGameConfig, int]]:
        """``[(cell_id, config, seed)]`` in canonical order (product, last field fastest)."""
        lists = [getattr(self, f) for f in CONFIG_FIELDS] + [self.seeds]
        out = []
        for cell_id, values in enumerate(itertools.product(*lists)):
            config = GaussianGameConfig(**dict(zip(CONFIG_FIELDS, values[:-1], strict=True)))
            out.append((cell_id, config, values[-1]))
        return out


def cell_table(spec: SweepSpec) -> dict[str, np.ndarray]:
    """The cell table: ``cell_id``, ``seed`` and one column per config field, (cells,) each."""
    rows = spec.cells()
    table = {"cell_id": np.array([r[0] for r in rows], np.int64)}
    table["seed"] = np.array([r[2] for r in rows], np.int64)
    for f in CONFIG_FIELDS:
        dt = np.int64 if f in SHAPE_FIELDS else np.float64
        table[f] = np.array([getattr(r[1], f) for r in rows], dt)
    return table
