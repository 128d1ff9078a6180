"""The worst-case canary of a clipped Gaussian release, many independent trials in one call.

Two neighbouring datasets differ in one task (replace-one adjacency), whose clipped
contributions are +C u (IN world) and -C u (OUT world) for a fixed unit vector u: the largest
possible distance, 2C, between the clipped sums. The release is that sum plus xi ~ N(0,
(z C)^2 I_d) (the other tasks' contributions are the same in both worlds and drop out). The
score is <release, u>: IN ~ N(C, (z C)^2), OUT ~ N(-C, (z C)^2), so the optimal test meets the
mu-GDP curve with mu = 2 / z exactly, and the audited mu_lb can approach mu.

Each trial draws its own IN and OUT releases (independent noise), so the trials are i.i.d.
pairs as :func:`mtl_tracing.audit.audit` requires.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import Array

from mtl_tracing import flat_random
from mtl_tracing._validate import (
    check_dtype,
    check_int,
    check_key,
    check_nonnegative,
    check_positive_float,
)

__all__ = ["canary_scores"]


@functools.partial(jax.jit, static_argnames=("trials", "dim", "dtype"))
def _canary_kernel(key, clip, noise_multiplier, *, trials, dim, dtype):
    u = jnp.zeros((dim,), dtype).at[0].set(1.0)
    noise = noise_multiplier * clip * flat_random.normal(key, (2, trials, dim), dtype)
    release_in = clip * u + noise[0]
    release_out = -clip * u + noise[1]
    hi = jax.lax.Precision.HIGHEST  # scores of an audit: full float32 products
    return jnp.matmul(release_in, u, precision=hi), jnp.matmul(release_out, u, precision=hi)


def canary_scores(
    key: Array,
    *,
    clip: float,
    noise_multiplier: float,
    trials: int,
    dim: int = 1,
    dtype=None,
) -> tuple[Array, Array]:
    """(scores_in, scores_out), each (trials,): the worst-case canary's score per trial.

    Args:
      key: typed PRNG key.
      clip: C > 0. noise_multiplier: z >= 0 (mu = 2 / z).
      trials: independent (IN, OUT) pairs, all drawn in one compiled call.
      dim: d of the release (the score only sees u's coordinate; d > 1 checks that).
      dtype: float32 (default) or float64.
    """
    check_key("key", key)
    clip = check_positive_float("clip", clip)
    z = check_nonnegative("noise_multiplier", noise_multiplier)
    trials = check_int("trials", trials, low=1)
    dim = check_int("dim", dim, low=1)
    dt = check_dtype(dtype)
    return _canary_kernel(
        key, jnp.asarray(clip, dt), jnp.asarray(z, dt), trials=trials, dim=dim, dtype=dt
    )
