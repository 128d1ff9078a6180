"""The Gaussian multitask mean-estimation model of Sec. 4 / App. B, as a frozen config.

Notation (argument name -> paper symbol):

===============  ===========  ==========================================================
argument         symbol       meaning
===============  ===========  ==========================================================
``tasks``        T            number of (IN) tasks used to compute the release mu_hat
``samples``      N            training samples per task
``dim``          d            data dimension
``challenge``    k            size of the adversary's challenge batch B (k <= N)
``task_std``     sbar         std of task means, mu_i ~ N(mu_bar, sbar^2 I_d); 0 allowed
                              (one shared mean: the membership-inference limit)
``sample_std``   s (sigma)    std of samples, x_ij ~ N(mu_i, s^2 I_d)
``mean``         mu_bar       global mean: a scalar (broadcast) or a length-d vector
===============  ===========  ==========================================================
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from mtl_tracing._validate import check_finite_array, check_int, check_nonnegative
from mtl_tracing.threat import ADVERSARIES, IN_ADVERSARIES

__all__ = ["ADVERSARIES", "IN_ADVERSARIES", "GameShape", "GaussianGameConfig", "check_config"]


class GameShape(NamedTuple):
    """The static (shape-determining) part of a config: hashable, used as a jit static arg."""

    tasks: int  # T
    samples: int  # N
    dim: int  # d
    challenge: int  # k


@dataclasses.dataclass(frozen=True)
class GaussianGameConfig:
    """Parameters of the tracing game on Gaussian multitask mean estimation.

    Validated on construction; bad values raise ``ValueError`` naming the field.
    ``mean`` is stored as a Python float or a tuple of ``dim`` floats (hashable).
    """

    tasks: int = 256
    samples: int = 8
    dim: int = 256
    challenge: int = 4
    task_std: float = 1.0
    sample_std: float = 1.0
    mean: float | tuple[float, ...] = 0.0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "tasks", check_int("tasks", self.tasks, low=1))
        set_(self, "samples", check_int("samples", self.samples, low=1))
        set_(self, "dim", check_int("dim", self.dim, low=1))
        set_(self, "challenge", check_int("challenge", self.challenge, low=1))
        if self.challenge > self.samples:
            raise ValueError(
                f"challenge must be <= samples (k <= N), got challenge={self.challenge} "
                f"> samples={self.samples}"
            )
        set_(self, "task_std", check_nonnegative("task_std", self.task_std))
        set_(self, "sample_std", check_nonnegative("sample_std", self.sample_std))
        if self.task_std == 0 and self.sample_std == 0:
            raise ValueError(
                "task_std and sample_std must not both be 0 (z is then identically 0), "
                "got task_std=0.0, sample_std=0.0"
            )
        mean = self.mean
        if np.ndim(mean) == 0:
            arr = check_finite_array("mean", mean, ndim=0)
            set_(self, "mean", float(arr))
        else:
            arr = check_finite_array("mean", mean, shape=(self.dim,))
            set_(self, "mean", tuple(float(v) for v in arr))

    @property
    def shape(self) -> GameShape:
        """Static part (T, N, d, k)."""
        return GameShape(self.tasks, self.samples, self.dim, self.challenge)

    def mean_array(self, dtype=np.float64) -> np.ndarray:
        """mu_bar as an array of shape () or (d,)."""
        return np.asarray(self.mean, dtype=dtype)

    def replace(self, **changes) -> GaussianGameConfig:
        """A validated copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["mean"] = list(self.mean) if isinstance(self.mean, tuple) else self.mean
        return d


def check_config(config: object) -> GaussianGameConfig:
    """``config`` itself if it is a ``GaussianGameConfig``, else ``ValueError``."""
    if not isinstance(config, GaussianGameConfig):
        raise ValueError(f"config must be a GaussianGameConfig, got {config!r}")
    return config
