"""Algorithms 1 and 2: the coordinate-wise variance and pairwise inner-product statistics.

See :mod:`mtl_tracing.attacks` for the notation table.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

from mtl_tracing.threat import ATTACKS

__all__ = ["ATTACKS", "check_embeddings", "variance_statistic", "inner_product_statistic"]


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
        norm = jnp.linalg.norm(e, axis=-1, keepdims=True)
        e = e / jnp.where(norm > 0, norm, jnp.ones_like(norm))
    gram = jnp.abs(jnp.einsum("...im,...jm->...ij", e, e, precision=jax.lax.Precision.HIGHEST))
    off_diag = jnp.sum(gram, axis=(-2, -1)) - jnp.trace(gram, axis1=-2, axis2=-1)
    # |G| is symmetric: the off-diagonal sum counts each pair i < j twice.
    return off_diag / (k * (k - 1))
