"""Algorithms 1 and 2: the coordinate-wise variance and pairwise inner-product statistics.

Each statistic has its definition on challenge sets (..., k, m) and its *Gram form* for the
evaluation's fast path (:mod:`mtl_tracing.attacks.registry`): a per-task matrix M (tasks, n, n)
of the pool and the statistic from total = s^T M s and diag = sum_i s_i M_ii over a 0/1
selection s of k rows. See :mod:`mtl_tracing.attacks` for the notation table.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

__all__ = [
    "check_embeddings",
    "variance_statistic",
    "inner_product_statistic",
    "centred_gram",
    "variance_from_gram",
    "abs_gram",
    "inner_product_from_gram",
]

_HI = jax.lax.Precision.HIGHEST  # attack scores: full float32 products on every backend


def check_embeddings(name: str, embeddings, min_rank: int = 2, layout="(..., k, m)") -> Array:
    """``embeddings`` as a finite float array of rank >= ``min_rank``; ``ValueError`` naming
    ``name`` otherwise. Host-side check (not traceable)."""
    e = jnp.asarray(embeddings)
    if e.ndim < min_rank:
        raise ValueError(f"{name} must have shape {layout}, got shape {e.shape}")
    if not jnp.issubdtype(e.dtype, jnp.floating):
        e = e.astype(jnp.result_type(float))
    return e


def variance_statistic(embeddings: Array, *, per_dimension: bool = False) -> Array:
    """Coordinate-wise variance attack, Algorithm 1.

    Args:
      embeddings: (..., k, m) challenge-set embeddings E = {h(x_1), ..., h(x_k)}, k >= 2.
      per_dimension: divide by m (Sec. 5.1 text) instead of returning tr(Q) (Algorithm 1).

    Returns:
      (...) z = tr(Q), Q the unbiased (ddof = 1) sample covariance of the k rows, = sum of the
      coordinate-wise variances (or tr(Q)/m). Same dtype as the input.
    """
    e = check_embeddings("embeddings", embeddings)
    k, m = e.shape[-2], e.shape[-1]
    if k < 2:
        raise ValueError(f"embeddings must have k >= 2 rows per challenge set, got k={k}")
    centred = e - jnp.mean(e, axis=-2, keepdims=True)
    z = jnp.sum(centred * centred, axis=(-2, -1)) / (k - 1)
    return z / m if per_dimension else z


def inner_product_statistic(embeddings: Array, *, cosine: bool = False) -> Array:
    """Pairwise inner-product attack, Algorithm 2 (line 10 read as |<e_i, e_j>|).

    Args:
      embeddings: (..., k, m) challenge-set embeddings (whitened or raw), k >= 2.
      cosine: normalise each embedding to unit norm first; a zero embedding stays zero (its
        similarities are 0), so there is never a NaN.

    Returns:
      (...) mean over the k(k-1)/2 unordered pairs i < j of |<e_i, e_j>|.
    """
    e = check_embeddings("embeddings", embeddings)
    k = e.shape[-2]
    if k < 2:
        raise ValueError(f"embeddings must have k >= 2 rows per challenge set, got k={k}")
    if cosine:
        e = _unit_rows(e)
    gram = jnp.abs(jnp.einsum("...im,...jm->...ij", e, e, precision=_HI))
    off_diag = jnp.sum(gram, axis=(-2, -1)) - jnp.trace(gram, axis1=-2, axis2=-1)
    # |G| is symmetric: the off-diagonal sum counts each pair i < j twice.
    return off_diag / (k * (k - 1))


def _unit_rows(e: Array) -> Array:
    """Rows scaled to unit norm; a zero row stays zero (never a NaN)."""
    norm = jnp.linalg.norm(e, axis=-1, keepdims=True)
    return e / jnp.where(norm > 0, norm, jnp.ones_like(norm))


# ------------------------------------------------------------------------------- Gram forms


def centred_gram(pool: Array, sizes: Array, *, per_dimension: bool = False) -> Array:
    """Algorithm 1's Gram form: C (tasks, n, n), the Gram of each task's valid rows centred at
    their mean (tr(Q) is shift invariant; centring keeps float32 free of cancellation).

    pool (tasks, n, m), sizes (tasks,) valid rows per task (padding rows stay in C, never
    selected)."""
    del per_dimension
    n = pool.shape[1]
    valid = (jnp.arange(n) < sizes[:, None])[..., None]
    count = jnp.maximum(sizes, 1)[:, None, None].astype(pool.dtype)
    centred = pool - jnp.sum(jnp.where(valid, pool, 0), axis=1, keepdims=True) / count
    return jnp.einsum("tim,tjm->tij", centred, centred, precision=_HI)


def variance_from_gram(
    total: Array, diag: Array, k: int, m: int, *, per_dimension: bool = False
) -> Array:
    """tr(Q) = [sum_i C_ii - (1/k) sum_ij C_ij] / (k - 1) over the k selected rows (/ m)."""
    z = (diag - total / k) / (k - 1)
    return z / m if per_dimension else z


def abs_gram(pool: Array, sizes: Array, *, cosine: bool = False) -> Array:
    """Algorithm 2's Gram form: |G| (tasks, n, n), G the Gram of the (cosine-normalised) rows."""
    del sizes
    e = _unit_rows(pool) if cosine else pool
    return jnp.abs(jnp.einsum("tim,tjm->tij", e, e, precision=_HI))


def inner_product_from_gram(
    total: Array, diag: Array, k: int, m: int, *, cosine: bool = False
) -> Array:
    """The mean |<e_i, e_j>| over pairs i < j: the off-diagonal sum of |G| over k (k - 1)."""
    del m, cosine
    return (total - diag) / (k * (k - 1))
