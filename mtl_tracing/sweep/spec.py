"""The sweep spec: the product of value lists of the Gaussian game's config fields, times seeds.

Notation as in :mod:`mtl_tracing.gaussian.config`: T ``tasks``, N ``samples``, d ``dim``, k
``challenge``, sbar ``task_std``, s ``sample_std``, mu_bar ``mean`` (scalar), G ``games``.
A *cell* is one (config, seed); its ``cell_id`` is its index in the canonical product order of
the *full* spec (tasks, samples, dim, challenge, task_std, sample_std, mean, clip,
noise_multiplier, release_noise_std, seed; last fastest), and its key is
``fold_in(key(root_seed), cell_id)``.

The DP release (:mod:`mtl_tracing.gaussian.release`): ``clip`` C (None: no clipping),
``noise_multiplier`` z (noise std z C on the clipped sum; needs a clip) and
``release_noise_std`` sigma (noise on mu_hat). Their defaults ((None,), (0,), (0,)) are the
plain game: the same cells, ids, fingerprint, programs and numbers as before these fields
existed. A spec with any other value is a *release sweep*: every cell, including a noiseless
one, runs :func:`~mtl_tracing.gaussian.release.release_kernel` with (task_std, sample_std,
mean, clip, z C, sigma) as traced columns (one program per shape across all release values;
its draws differ from the plain game's, so a noiseless cell of a release sweep is a different
sample of the same law). Its cells are :class:`ReleaseCellConfig`.

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
from mtl_tracing._validate import (
    check_choice,
    check_finite_float,
    check_int,
    check_nonnegative,
    check_positive_float,
    check_probability,
)
from mtl_tracing.gaussian.config import GaussianGameConfig
from mtl_tracing.threat import IN_ADVERSARIES as ADVERSARIES

__all__ = [
    "ADVERSARIES",
    "CONFIG_FIELDS",
    "SHAPE_FIELDS",
    "TRACED_FIELDS",
    "RELEASE_FIELDS",
    "ReleaseCellConfig",
    "SweepSpec",
    "cell_table",
]

CONFIG_FIELDS = ("tasks", "samples", "dim", "challenge", "task_std", "sample_std", "mean")
SHAPE_FIELDS = ("tasks", "samples", "dim", "challenge")
TRACED_FIELDS = ("task_std", "sample_std", "mean")
RELEASE_FIELDS = ("clip", "noise_multiplier", "release_noise_std")
_RELEASE_DEFAULTS = {"clip": (None,), "noise_multiplier": (0.0,), "release_noise_std": (0.0,)}


@dataclasses.dataclass(frozen=True)
class ReleaseCellConfig(GaussianGameConfig):
    """A cell of a release sweep: the game's config plus its DP release (C, z, sigma).

    The traced columns the runner reads: ``clip_value`` (C, inf without clipping),
    ``sum_noise_std`` (z C) and ``release_noise_std`` (sigma).
    """

    clip: float | None = None
    noise_multiplier: float = 0.0
    release_noise_std: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.release  # noqa: B018 (validates C, z and sigma)

    @property
    def release(self):
        """The :class:`~mtl_tracing.gaussian.release.DPRelease` of this cell."""
        from mtl_tracing.gaussian.release import DPRelease

        return DPRelease(self.clip, self.noise_multiplier, self.release_noise_std)

    @property
    def clip_value(self) -> float:
        return math.inf if self.clip is None else self.clip

    @property
    def sum_noise_std(self) -> float:
        return self.release.sum_noise_std()

    @property
    def noise_std(self) -> float:
        """sigma_tot = sqrt((z C / T)^2 + sigma^2), the noise std per coordinate of mu_hat."""
        return self.release.noise_std(self.tasks)


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
    are scalars mu_bar. ``clip`` (C, None for no clipping), ``noise_multiplier`` (z) and
    ``release_noise_std`` (sigma) describe the DP release (module docstring); a clip needs
    ``sampler="faithful"``. ``lrt``: also score the optimal statistic Lambda
    (:mod:`mtl_tracing.gaussian.optimal`; ``lrt_*`` columns; the sufficient sampler then draws
    O(T d) normals per game and compiles one program per shape). Validated on construction;
    errors name the field and the value.
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
    clip: tuple[float | None, ...] = (None,)
    noise_multiplier: tuple[float, ...] = (0.0,)
    release_noise_std: tuple[float, ...] = (0.0,)
    lrt: bool = False

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
        clips = _as_tuple("clip", self.clip)
        clips = tuple(None if c is None else check_positive_float("clip", c) for c in clips)
        set_(self, "clip", clips)
        for name in ("noise_multiplier", "release_noise_std"):
            vals = _as_tuple(name, getattr(self, name))
            set_(self, name, tuple(check_nonnegative(name, v) for v in vals))
        if None in clips and max(self.noise_multiplier) > 0:
            raise ValueError(
                "noise_multiplier > 0 needs a clip in every combination (the noise std is "
                f"noise_multiplier * clip), got clip={clips!r} with noise_multiplier="
                f"{self.noise_multiplier!r}; use release_noise_std for noise without clipping"
            )
        if not isinstance(self.lrt, bool):
            raise ValueError(f"lrt must be a bool, got {self.lrt!r}")
        if self.sampler == "sufficient" and any(c is not None for c in clips):
            raise ValueError(
                f"sampler 'sufficient' has no exact reduction for a clipped release (clip="
                f"{clips!r}): clipping couples the d coordinates; use sampler='faithful'"
            )

    @property
    def has_release(self) -> bool:
        """Whether any release field differs from the plain game (a release sweep)."""
        return any(getattr(self, f) != _RELEASE_DEFAULTS[f] for f in RELEASE_FIELDS)

    def to_dict(self) -> dict:
        """The fields; the release fields only in a release sweep and ``lrt`` only when True
        (so a plain spec's dict and fingerprint are those of the plain game)."""
        skip = (() if self.has_release else RELEASE_FIELDS) + (() if self.lrt else ("lrt",))
        return {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip
        }

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
    def cell_fields(self) -> tuple[str, ...]:
        """The fields of a cell's config: the game's, then the release's in a release sweep."""
        return CONFIG_FIELDS + (RELEASE_FIELDS if self.has_release else ())

    @property
    def num_cells(self) -> int:
        # The release fields of a plain spec are one-element lists: same count and ids.
        return math.prod(len(getattr(self, f)) for f in self.cell_fields) * len(self.seeds)

    def cells(self) -> list[tuple[int, GaussianGameConfig, int]]:
        """``[(cell_id, config, seed)]`` in canonical order (product, last field fastest);
        configs are :class:`ReleaseCellConfig` in a release sweep."""
        fields = self.cell_fields
        cls = ReleaseCellConfig if self.has_release else GaussianGameConfig
        lists = [getattr(self, f) for f in fields] + [self.seeds]
        out = []
        for cell_id, values in enumerate(itertools.product(*lists)):
            config = cls(**dict(zip(fields, values[:-1], strict=True)))
            out.append((cell_id, config, values[-1]))
        return out


def cell_table(spec: SweepSpec) -> dict[str, np.ndarray]:
    """The cell table: ``cell_id``, ``seed`` and one column per config field, (cells,) each."""
    rows = spec.cells()
    table = {"cell_id": np.array([r[0] for r in rows], np.int64)}
    table["seed"] = np.array([r[2] for r in rows], np.int64)
    for f in spec.cell_fields:
        dt = np.int64 if f in SHAPE_FIELDS else np.float64
        vals = [getattr(r[1], f) for r in rows]
        table[f] = np.array([np.nan if v is None else v for v in vals], dt)
    return table
