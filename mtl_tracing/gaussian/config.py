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

The game's DP release (:class:`DPRelease`: clip C, noise multiplier z, release noise sigma;
:mod:`~mtl_tracing.gaussian.release`) is configured here too. "No clip" is ``None`` in Python
and an empty or absent value on disk (JSON ``null``, an empty CSV field).
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np

from mtl_tracing._validate import (
    check_fields,
    check_finite_array,
    check_int,
    check_int_fields,
    check_nonnegative,
    check_positive_float,
    check_probability,
)
from mtl_tracing.threat import ADVERSARIES, IN_ADVERSARIES

__all__ = [
    "ADVERSARIES",
    "IN_ADVERSARIES",
    "SAMPLERS",
    "GameShape",
    "GaussianGameConfig",
    "DPRelease",
    "check_config",
    "check_shape",
    "check_release",
]

#: The game's samplers (:mod:`~mtl_tracing.gaussian.game`): the sufficient statistics
#: (O(T) per game, exact in law) and the literal draw of every sample.
SAMPLERS = ("sufficient", "faithful")


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
        check_int_fields(self, tasks=1, samples=1, dim=1, challenge=1)
        if self.challenge > self.samples:
            raise ValueError(
                f"challenge must be <= samples (k <= N), got challenge={self.challenge} "
                f"> samples={self.samples}"
            )
        check_fields(self, check_nonnegative, "task_std", "sample_std")
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


def check_shape(shape: object) -> GameShape:
    """``shape`` as a validated :class:`GameShape` (T, N, d, k >= 1, k <= N), else
    ``ValueError``."""
    if not isinstance(shape, tuple) or len(shape) != 4:
        raise ValueError(
            f"shape must be a GameShape(tasks, samples, dim, challenge), got {shape!r}"
        )
    T, N, d, k = (check_int(n, v, low=1) for n, v in zip(GameShape._fields, shape, strict=True))
    if k > N:
        raise ValueError(f"challenge must be <= samples (k <= N), got challenge={k} > samples={N}")
    return GameShape(T, N, d, k)


@dataclasses.dataclass(frozen=True)
class DPRelease:
    """How mu_hat is released (:mod:`~mtl_tracing.gaussian.release`): ``clip`` C (``None``: no
    clipping), ``noise_multiplier`` z (noise std z C on the clipped sum; needs ``clip``),
    ``release_noise_std`` sigma (noise on mu_hat, no guarantee). The default is the plain
    release. ``to_dict`` writes no clip as ``None`` (JSON ``null``)."""

    clip: float | None = None
    noise_multiplier: float = 0.0
    release_noise_std: float = 0.0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if self.clip is not None:
            set_(self, "clip", check_positive_float("clip", self.clip))
        set_(self, "noise_multiplier", check_nonnegative("noise_multiplier", self.noise_multiplier))
        if self.noise_multiplier > 0 and self.clip is None:
            raise ValueError(
                "noise_multiplier needs clip (the noise std is noise_multiplier * clip), got "
                f"noise_multiplier={self.noise_multiplier!r} with clip=None; use "
                "release_noise_std for noise without clipping"
            )
        set_(
            self,
            "release_noise_std",
            check_nonnegative("release_noise_std", self.release_noise_std),
        )

    @property
    def is_plain(self) -> bool:
        """No clipping and no noise: today's release."""
        return self.clip is None and self.noise_multiplier == 0 and self.release_noise_std == 0

    def sum_noise_std(self) -> float:
        """z C, the std of xi on the clipped sum (0 without noise)."""
        return self.noise_multiplier * self.clip if self.noise_multiplier > 0 else 0.0

    def noise_std(self, tasks: int) -> float:
        """sigma_tot = sqrt((z C / T)^2 + sigma^2), the noise std per coordinate of mu_hat."""
        tasks = check_int("tasks", tasks, low=1)
        return math.hypot(self.sum_noise_std() / tasks, self.release_noise_std)

    @property
    def mu(self) -> float:
        """The GDP mu of the release: 2/z with clipping (replace-one adjacency), inf otherwise."""
        if self.clip is None or self.noise_multiplier == 0:
            return math.inf
        return 2.0 / self.noise_multiplier

    def epsilon(self, delta: float) -> float:
        """epsilon at ``delta`` implied by mu-GDP (inf without a guarantee)."""
        # SciPy's root finder: imported on use, so the config stays cheap to import.
        from mtl_tracing.audit.gdp import gdp_epsilon

        delta = check_probability("delta", delta)
        return math.inf if math.isinf(self.mu) else float(gdp_epsilon(self.mu, delta))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def check_release(release: object) -> DPRelease:
    """``release`` itself if it is a ``DPRelease``, else ``ValueError``."""
    if not isinstance(release, DPRelease):
        raise ValueError(f"release must be a DPRelease, got {release!r}")
    return release
