"""Memory planning of the game's samplers: the device's memory, a game's peak memory and the
vmap width of a chunk of games (host code; the samplers and the sweep size their chunks here).
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp

from mtl_tracing._validate import check_choice
from mtl_tracing.gaussian.config import SAMPLERS, GameShape, check_shape
from mtl_tracing.gaussian.draws import row_block

__all__ = ["device_memory_bytes", "bytes_per_game", "lanes"]


def device_memory_bytes() -> int:
    """Memory of the default device: its ``bytes_limit`` when JAX reports one (GPU), else the
    host's physical memory."""
    try:
        stats = jax.devices()[0].memory_stats() or {}
    except Exception:  # noqa: BLE001 - backends without memory stats
        stats = {}
    if stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))


def bytes_per_game(sampler: str, shape: GameShape, dtype=None, norms: bool = False) -> int:
    """A conservative estimate of the peak memory one game needs inside a vmapped chunk
    (``norms``: with the :class:`~mtl_tracing.gaussian.game.GameNorms` outputs)."""
    check_choice("sampler", sampler, SAMPLERS)
    T, N, d, k = check_shape(shape)
    item = jnp.dtype(jnp.float32 if dtype is None else dtype).itemsize
    if sampler == "faithful":
        # x and its noise (2 T N d), three batches and their noise (6 T k d), task means,
        # permutations (int32), plus slack for temporaries.
        floats = 2 * T * N * d + 6 * T * k * d + 6 * T * d + 3 * d + (4 * T if norms else 0)
        return int(2 * (floats * item + 4 * T * N) + 1024)
    rows = 12 * row_block(T, d - 1) * T if norms else 0  # a block of orthogonal rows
    return int(2 * (16 * T + rows) * item + 1024)


def lanes(sampler: str, shape: GameShape, dtype=None, norms: bool = False) -> int:
    """Games vectorised together (vmap width) inside a chunk; depends on the shape only.

    Chunks are a ``lax.map`` over groups of ``lanes`` games, each group a ``vmap``, and chunk
    sizes are multiples of ``lanes``. Game g then always runs in lane g mod lanes of the same
    compiled program, which is what makes results bitwise independent of the chunk size (XLA's
    vectorised code may round differently across lanes of vmaps of different widths).
    """
    if sampler == "sufficient" and not norms:
        return 32
    per_game = bytes_per_game(sampler, shape, dtype, norms)
    most = 32 if sampler == "sufficient" else 8  # the sufficient sampler with norms: up to 32
    width = max(1, min(most, (1 << 22) // per_game))
    return 1 << (width.bit_length() - 1)  # power of two in [1, most]
