"""Challenge sets: k rows of a task's pool without replacement, as indices or 0/1 masks."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from mtl_tracing import flat_random
from mtl_tracing._validate import check_int
from mtl_tracing.attacks.statistics import check_embeddings

__all__ = ["challenge_indices", "challenge_sets", "check_pool", "selection_masks"]


def _row_uniforms(trial_key: Array, sizes: Array, n: int) -> Array:
    """(tasks, n) uniforms, -1 on rows beyond a task's pool size: those can never win, so the
    k largest of the valid rows are a uniform k-subset without replacement."""
    u = flat_random.uniform(trial_key, (sizes.shape[0], n))
    return jnp.where(jnp.arange(n) < sizes[:, None], u, -1.0)


def _indices_kernel(key: Array, sizes: Array, n: int, k: int, trials: int) -> Array:
    def one_trial(trial_key):
        return jax.lax.top_k(_row_uniforms(trial_key, sizes, n), k)[1]  # (tasks, k)

    return jax.vmap(one_trial)(jax.random.split(key, trials))


#: Above this pool size the masks come from ``top_k`` + scatter: the pairwise ranking holds
#: (trials, tasks, n, n) comparisons (72 GiB for the paper's Stack Overflow problems cell,
#: n = 1024), while ``top_k`` holds (trials, tasks, k) indices. Both give the same sets.
PAIRWISE_MAX_N = 64


def selection_masks(key: Array, sizes: Array, n: int, k: int, trials: int) -> Array:
    """Unchecked kernel: the sets of ``challenge_indices`` as 0/1 masks (trials, tasks, n).

    Row i is chosen when fewer than k rows rank ahead of it (larger uniform, or equal and a
    lower index: ``top_k``'s order), so the sets are the same as the indices' for a key. For
    n > :data:`PAIRWISE_MAX_N` the indices themselves are scattered into the masks.
    """
    if n > PAIRWISE_MAX_N:
        idx = _indices_kernel(key, sizes, n, k, trials)  # (trials, tasks, k)
        r = jnp.arange(trials)[:, None, None]
        t = jnp.arange(sizes.shape[0])[None, :, None]
        return jnp.zeros((trials, sizes.shape[0], n), bool).at[r, t, idx].set(True)
    order = jnp.arange(n)

    def one_trial(trial_key):
        u = _row_uniforms(trial_key, sizes, n)
        ui, uj = u[:, :, None], u[:, None, :]
        ahead = (uj > ui) | ((uj == ui) & (order[None, :] < order[:, None]))
        return jnp.sum(ahead, axis=-1) < k  # (tasks, n)

    return jax.vmap(one_trial)(jax.random.split(key, trials))


def check_pool(pool, pool_sizes, k: int):
    """Validated (pool (tasks, n, m), pool_sizes (tasks,) int32) with k <= every size; host-side."""
    pool = check_embeddings("pool", pool, min_rank=3, layout="(tasks, n, m)")
    if pool.ndim != 3:
        raise ValueError(f"pool must have shape (tasks, n, m), got {pool.shape}")
    tasks, n = pool.shape[:2]
    if pool_sizes is None:
        sizes = np.full((tasks,), n, dtype=np.int32)
    else:
        sizes = np.asarray(pool_sizes)
        if sizes.shape != (tasks,) or not np.issubdtype(sizes.dtype, np.integer):
            raise ValueError(
                f"pool_sizes must be integers of shape ({tasks},), got {sizes.dtype} {sizes.shape}"
            )
        if sizes.size and (sizes.min() < 0 or sizes.max() > n):
            raise ValueError(f"pool_sizes must lie in [0, {n}], got {sizes.min()}..{sizes.max()}")
    if sizes.size and k > int(sizes.min()):
        raise ValueError(
            f"challenge k must be <= the smallest pool size {int(sizes.min())}, got k={k}"
        )
    return pool, jnp.asarray(sizes, dtype=jnp.int32)


def challenge_indices(
    key: Array, pool_sizes: Sequence[int] | Array, n: int, k: int, trials: int
) -> Array:
    """Row indices of the challenge sets: (trials, tasks, k), k distinct rows < pool_sizes[t].

    Trial i uses ``split(key, trials)[i]``; tasks are drawn jointly from that key.
    """
    n = check_int("n", n, low=1)
    k = check_int("challenge k", k, low=1, high=n)
    trials = check_int("trials", trials, low=1)
    _, sizes = check_pool(jnp.zeros((len(pool_sizes), n, 1)), np.asarray(pool_sizes), k)
    return _jit_indices(key, sizes, n, k, trials)


_jit_indices = jax.jit(_indices_kernel, static_argnums=(2, 3, 4))


def challenge_sets(
    key: Array, pool: Array, k: int, trials: int, *, pool_sizes: Array | None = None
) -> Array:
    """Draw challenge sets: for every trial and task, k distinct rows of that task's pool.

    Strong adversary: IN tasks' pools are their training samples; weak: their held-out samples;
    OUT tasks' pools are always fresh samples. Pass the pools of all tasks at once.

    Args:
      key: typed PRNG key.
      pool: (tasks, n, m) embeddings, padded per task.
      k: challenge size, 1 <= k <= min(pool_sizes).
      trials: number of independent draws per task.
      pool_sizes: (tasks,) ints, real rows of each task (ragged pools); default n for all.

    Returns:
      (trials, tasks, k, m) embeddings, rows without replacement within each set.
    """
    trials = check_int("trials", trials, low=1)
    k = check_int("challenge k", k, low=1)
    pool, sizes = check_pool(pool, pool_sizes, k)
    idx = _jit_indices(key, sizes, pool.shape[1], k, trials)
    return _gather(pool, idx)


@jax.jit
def _gather(pool: Array, idx: Array) -> Array:
    # pool (tasks, n, m), idx (trials, tasks, k) -> (trials, tasks, k, m)
    return jax.vmap(lambda i: jnp.take_along_axis(pool, i[..., None], axis=1))(idx)
