"""Random arrays drawn flat and reshaped: a compile-time helper for XLA:CPU.

XLA:CPU compiles the threefry hash of a multi-dimensional draw several times more slowly than
the same number of values drawn flat (``benchmarks/bench_compile_draws.py``, 2 cores: 2.6x at
rank 3, 4.7x at rank 5, 6.7x for a conv kernel). Each function calls the public ``jax.random``
function with the flat shape ``(prod(shape),)`` and reshapes. The result has the law of the
same draw in ``shape``; it is not promised to be the same numbers (JAX promises bits only for
the same call). Use it where compile time matters; ``jax.random`` in the array's shape is
equally correct.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

__all__ = ["normal", "uniform", "truncated_normal", "bernoulli", "rademacher", "lecun_normal"]


def _flat(shape) -> tuple[tuple[int, ...], tuple[int]]:
    shape = tuple(int(s) for s in shape)
    return shape, (math.prod(shape),)


def normal(key, shape=(), dtype=float):
    """``jax.random.normal(key, shape, dtype)`` in law, drawn flat."""
    shape, flat = _flat(shape)
    return jax.random.normal(key, flat, dtype).reshape(shape)


def uniform(key, shape=(), dtype=float, minval=0.0, maxval=1.0):
    """``jax.random.uniform`` in law (scalar bounds), drawn flat."""
    shape, flat = _flat(shape)
    return jax.random.uniform(key, flat, dtype, minval, maxval).reshape(shape)


def truncated_normal(key, lower, upper, shape=(), dtype=float):
    """``jax.random.truncated_normal`` in law (scalar bounds), drawn flat."""
    shape, flat = _flat(shape)
    return jax.random.truncated_normal(key, lower, upper, flat, dtype).reshape(shape)


def bernoulli(key, p, shape=()):
    """``jax.random.bernoulli`` in law (scalar probability), drawn flat."""
    shape, flat = _flat(shape)
    return jax.random.bernoulli(key, p, flat).reshape(shape)


def rademacher(key, shape=(), dtype=int):
    """``jax.random.rademacher`` in law, drawn flat."""
    shape, flat = _flat(shape)
    return jax.random.rademacher(key, flat, dtype).reshape(shape)


# Standard deviation of N(0, 1) truncated to (-2, 2): Var = 1 - 2 * 2 phi(2) / (2 Phi(2) - 1).
_TRUNCATED_STD = math.sqrt(
    1.0 - 4.0 * math.exp(-2.0) / math.sqrt(2.0 * math.pi) / math.erf(2.0 / math.sqrt(2.0))
)


def lecun_normal(in_axis: int = -2, out_axis: int = -1):
    """LeCun-normal initializer (flax's default kernel init) drawing flat: a normal truncated
    to (-2, 2) standard deviations, scaled to variance 1 / fan_in, where fan_in is
    ``shape[in_axis]`` times the receptive field (the axes other than ``in_axis`` and
    ``out_axis``)."""

    def init(key, shape, dtype=jnp.float32):
        shape = tuple(int(s) for s in shape)
        if len(shape) < 2:
            raise ValueError(f"lecun_normal needs a shape of rank >= 2, got {shape}")
        fan_in = math.prod(shape) // shape[out_axis]
        stddev = 1.0 / math.sqrt(fan_in) / _TRUNCATED_STD
        return truncated_normal(key, -2, 2, shape, dtype) * jnp.asarray(stddev, dtype)

    return init
