"""Random draws that compile fast on CPU: JAX's numbers, their counters hashed flat.

XLA:CPU compiles the threefry hash of a multi-dimensional draw far more slowly than that of a
flat one (``benchmarks/bench_compile_draws.py``, 2 cores: ``jax.random.normal(key,
(2, 2, 2, 2, 4))`` 1.07 s against 0.18 s for the same 64 numbers drawn flat; a (3, 3, 4, 8)
LeCun-normal convolution kernel 1.30 s against 0.20 s). Under ``vmap`` a 2-D draw is 3-D.
JAX's counters are the row-major flat index of the shape (both threefry modes), and the
transforms to normal, uniform or truncated normal are elementwise, so hashing
``prod(shape)`` counters flat gives JAX's numbers bit for bit (``tests/test_flat_random.py``:
float32 and float64, plain and vmapped). :func:`normal` and :func:`uniform` apply the float
transform in the array's shape with JAX's operations (only the hash is flat): reshaping a
finished flat draw gives the same numbers alone, but inside a larger program XLA then fuses it
into the arithmetic that follows differently (``synthetic.generate`` moved by 1 ulp in a few
entries that way; with the shaped transform it is bitwise unchanged, as is every other use,
checked end to end).

Same signatures as ``jax.random`` (shapes static; scalar bounds and probabilities).
:func:`lecun_normal` is ``jax.nn.initializers.lecun_normal`` (flax's default kernel
initializer) drawing flat.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["normal", "uniform", "truncated_normal", "bernoulli", "rademacher", "lecun_normal"]


def _flat(shape) -> tuple[tuple[int, ...], tuple[int]]:
    shape = tuple(int(s) for s in shape)
    return shape, (math.prod(shape),)


def _float_dtype(dtype):
    return jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.dtype(dtype)))


def _shaped_uniform(key, shape, dt, minval, maxval):
    """``jax.random.uniform``'s numbers: the random bits hashed flat, the float transform
    applied in ``shape`` with JAX's operations in its order (so XLA fuses what follows as it
    would with ``jax.random.uniform``). float32/float64 only."""
    udt = jnp.uint32 if dt.itemsize == 4 else jnp.uint64
    bits = jax.random.bits(key, (math.prod(shape),), udt).reshape(shape)
    nbits, nmant = jnp.finfo(dt).bits, jnp.finfo(dt).nmant
    lo = lax.convert_element_type(minval, dt)
    hi = lax.convert_element_type(maxval, dt)
    float_bits = lax.shift_right_logical(bits, jnp.array(nbits - nmant, udt))
    float_bits = lax.bitwise_or(float_bits, jnp.asarray(np.array(1.0, dt).view(udt), dtype=udt))
    floats = lax.bitcast_convert_type(float_bits, dt) - jnp.array(1.0, dt)
    return lax.max(lo, lax.reshape(floats * (hi - lo) + lo, shape))


def normal(key, shape=(), dtype=float):
    """``jax.random.normal``: the bits hashed flat, the transform in ``shape``."""
    shape, flat = _flat(shape)
    dt = _float_dtype(dtype)
    if dt.itemsize not in (4, 8):
        return jax.random.normal(key, flat, dt).reshape(shape)
    lo = np.nextafter(np.array(-1.0, dt), np.array(0.0, dt), dtype=dt)
    u = _shaped_uniform(key, shape, dt, lo, np.array(1.0, dt))
    return lax.mul(np.array(np.sqrt(2), dt), lax.erf_inv(u))


def uniform(key, shape=(), dtype=float, minval=0.0, maxval=1.0):
    """``jax.random.uniform`` with scalar bounds: the bits hashed flat, the transform in
    ``shape``."""
    shape, flat = _flat(shape)
    dt = _float_dtype(dtype)
    if dt.itemsize not in (4, 8):
        return jax.random.uniform(key, flat, dt, minval, maxval).reshape(shape)
    return _shaped_uniform(key, shape, dt, minval, maxval)


def truncated_normal(key, lower, upper, shape=(), dtype=float):
    """``jax.random.truncated_normal`` with scalar bounds, drawn flat."""
    shape, flat = _flat(shape)
    return jax.random.truncated_normal(key, lower, upper, flat, dtype).reshape(shape)


def bernoulli(key, p, shape=()):
    """``jax.random.bernoulli`` with a scalar probability, drawn flat."""
    shape, flat = _flat(shape)
    return jax.random.bernoulli(key, p, flat).reshape(shape)


def rademacher(key, shape=(), dtype=int):
    """``jax.random.rademacher``, drawn flat."""
    shape, flat = _flat(shape)
    return jax.random.rademacher(key, flat, dtype).reshape(shape)


# Standard deviation of the standard normal truncated to (-2, 2) (JAX's constant).
_TRUNCATED_STD = 0.87962566103423978


def lecun_normal(in_axis: int = -2, out_axis: int = -1):
    """``jax.nn.initializers.lecun_normal(in_axis, out_axis)`` drawing flat: truncated normal
    (-2, 2) scaled to variance 1 / fan_in, fan_in = shape[in_axis] x the receptive field (the
    axes other than ``in_axis`` and ``out_axis``), computed with JAX's operations in its order."""

    def init(key, shape, dtype=jnp.float32):
        shape = tuple(int(s) for s in shape)
        if len(shape) < 2:
            raise ValueError(f"lecun_normal needs a shape of rank >= 2, got {shape}")
        dtype = jnp.dtype(dtype)
        in_size, out_size = shape[in_axis], shape[out_axis]
        receptive = math.prod(shape) / in_size / out_size / 1  # JAX divides by the batch size
        variance = jnp.array(1.0 / (in_size * receptive), dtype=dtype)
        stddev = jnp.sqrt(variance) / jnp.array(_TRUNCATED_STD, dtype)
        return truncated_normal(key, -2, 2, shape, dtype) * stddev

    return init
