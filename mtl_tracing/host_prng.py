"""NumPy twin of JAX's threefry PRNG for the few draws a short command makes on the host.

On CPU every program that draws random numbers compiles a threefry hash (~0.05-0.1 s each on 2
cores, ~0.45 s for the bootstrap's index draw). For a command that draws once, computing the
same integers in NumPy is faster than compiling. This module reproduces, bit for bit, JAX's
threefry2x32 key derivation in its partitionable form (``jax_threefry_partitionable``, the
default since JAX 0.5): :func:`fold_in`, :func:`split`, the integers of
``jax.random.randint`` (:func:`randint`, int32 or int64) and ``jax.random.permutation(key, n)``
(:func:`permutation`). Only integer arithmetic is involved
(uint32/uint64 wrap-around, as in XLA), so the twin is exact; ``tests/test_host_prng.py``
checks it against JAX. :func:`applies` says when it may be used (a threefry key and the
partitionable flag on); elsewhere callers use JAX itself.

Key data are uint32 arrays of shape (..., 2), as ``jax.random.key_data`` returns them.
"""

from __future__ import annotations

import jax
import numpy as np

__all__ = [
    "applies",
    "key_data",
    "wrap",
    "threefry2x32",
    "fold_in",
    "fold_in_key",
    "split",
    "randint",
    "permutation",
    "permutation_key",
    "int_width",
]

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def applies(key) -> bool:
    """True when ``key`` is a concrete threefry2x32 key and JAX derives keys partitionably."""
    if isinstance(key, jax.core.Tracer):
        return False
    try:
        impl = jax.random.key_impl(key)
    except (TypeError, ValueError):
        return False
    return "threefry2x32" in str(impl) and bool(jax.config.jax_threefry_partitionable)


def key_data(key) -> np.ndarray:
    """(..., 2) uint32 data of a typed key (no program is compiled)."""
    return np.asarray(jax.random.key_data(key), np.uint32)


def wrap(data: np.ndarray):
    """A typed threefry key from (..., 2) uint32 data (no program is compiled)."""
    return jax.random.wrap_key_data(np.asarray(data, np.uint32), impl="threefry2x32")


def fold_in_key(key, value: int):
    """``jax.random.fold_in(key, value)`` without compiling where the twin applies."""
    if not applies(key):
        return jax.random.fold_in(key, value)
    return wrap(fold_in(key_data(key), value))


def int_width() -> int:
    """Bits of ``randint``'s default integer dtype (64 under ``jax_enable_x64``)."""
    return 64 if jax.config.jax_enable_x64 else 32


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def threefry2x32(k1, k2, x1, x2) -> tuple[np.ndarray, np.ndarray]:
    """The Threefry-2x32 hash (20 rounds) of counters (x1, x2) under key (k1, k2), broadcast.

    All inputs uint32; the arithmetic wraps modulo 2^32 exactly as XLA's does.
    """
    k1, k2, x1, x2 = (np.asarray(a, np.uint32) for a in (k1, k2, x1, x2))
    k1, k2, x1, x2 = np.broadcast_arrays(k1, k2, x1, x2)
    ks = (k1, k2, k1 ^ k2 ^ _PARITY)
    with np.errstate(over="ignore"):  # 0-d operands warn on the intended wrap-around
        a = x1 + ks[0]
        b = x2 + ks[1]
        for step in range(5):
            for r in _ROTATIONS[step % 2]:
                a = a + b
                b = _rotl(b, r) ^ a
            a = a + ks[(step + 1) % 3]
            b = b + ks[(step + 2) % 3] + np.uint32(step + 1)
    return a, b


def _counters(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The (high, low) 32-bit words of iota(n) as uint64 (``prng.iota_2x32_shape``)."""
    idx = np.arange(n, dtype=np.uint64)
    return (idx >> np.uint64(32)).astype(np.uint32), (idx & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def _hash(data: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Both hash words of counters 0..n-1 under every key of ``data`` (..., 2): (..., n) each."""
    data = np.asarray(data, np.uint32)
    hi, lo = _counters(n)
    return threefry2x32(data[..., 0:1], data[..., 1:2], hi, lo)


def fold_in(data: np.ndarray, value: int) -> np.ndarray:
    """``jax.random.fold_in``: (..., 2) key data folded with a uint32 ``value``."""
    data = np.asarray(data, np.uint32)
    a, b = threefry2x32(data[..., 0], data[..., 1], np.uint32(0), np.uint32(value))
    return np.stack([a, b], axis=-1)


def split(data: np.ndarray, num: int) -> np.ndarray:
    """``jax.random.split(key, num)``: (..., 2) key data -> (..., num, 2)."""
    a, b = _hash(data, num)
    return np.stack([a, b], axis=-1)


def _bits(data: np.ndarray, n: int, width: int) -> np.ndarray:
    """``random_bits`` of shape (n,) per key: (..., n) uint32 or uint64."""
    a, b = _hash(data, n)
    if width == 32:
        return a ^ b
    return (a.astype(np.uint64) << np.uint64(32)) | b.astype(np.uint64)


def randint(data: np.ndarray, n: int, maxval: int, *, width: int = 32) -> np.ndarray:
    """``jax.random.randint(key, (n,), 0, maxval)`` per key: (..., n) int32 (width 32) or int64.

    ``width`` is the integer dtype's bits: 64 is JAX's default dtype under ``jax_enable_x64``.
    The same modulus construction as JAX (two words of bits per value), wrapping in the
    unsigned dtype.
    """
    if width not in (32, 64):
        raise ValueError(f"width must be 32 or 64, got {width!r}")
    if not 1 <= maxval <= 2**31 - 1:
        raise ValueError(f"maxval must be in [1, 2**31 - 1], got {maxval!r}")
    udt = np.uint32 if width == 32 else np.uint64
    keys = split(data, 2)
    higher = _bits(keys[..., 0, :], n, width)
    lower = _bits(keys[..., 1, :], n, width)
    span = np.asarray([maxval], udt)
    multiplier = np.asarray([2 ** (width // 2)], udt) % span
    multiplier = (multiplier * multiplier) % span
    offset = ((higher % span) * multiplier + lower % span) % span
    return offset.astype(np.int32 if width == 32 else np.int64)


def permutation(data: np.ndarray, n: int) -> np.ndarray:
    """``jax.random.permutation(key, n)`` for one key: (n,) int32 (int64 under x64).

    JAX's sort-based shuffle: ceil(3 ln n / ln(2^32 - 1)) rounds, each splitting the key, drawing
    32 random bits per element and stably sorting by them.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n!r}")
    data = np.asarray(data, np.uint32)
    x = np.arange(n, dtype=np.int32 if int_width() == 32 else np.int64)
    rounds = int(np.ceil(3 * np.log(max(1, n)) / np.log(np.iinfo(np.uint32).max)))
    for _ in range(rounds):
        data, sub = split(data, 2)
        x = x[np.argsort(_bits(sub, n, 32), kind="stable")]
    return x


def permutation_key(key, n: int) -> np.ndarray:
    """``jax.random.permutation(key, n)`` as NumPy, without compiling where the twin applies."""
    if not applies(key):
        return np.asarray(jax.random.permutation(key, n))
    return permutation(key_data(key), n)
