"""Leave-one-task-out ZCA whitening with a relative ridge (App. A.7.1).

See :mod:`mtl_tracing.attacks` for the adversary's pool and the downdate scheme.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from mtl_tracing._validate import check_finite_float
from mtl_tracing.attacks.statistics import check_embeddings

# Whitening's products (covariance downdates, Q^-1/2) run at full float32 precision: XLA's
# TF32 default on recent GPUs would round each product to 10 mantissa bits.
_HI = jax.lax.Precision.HIGHEST

__all__ = ["DEFAULT_RIDGE", "Whitening", "loto_whitening", "apply_whitening", "whiten_for_gram"]

DEFAULT_RIDGE = 1e-3
"""Default lambda. The ridge is *relative* (lambda tr(Q)/m is lambda times the mean eigenvalue),
so the rule is scale invariant; it bounds cond(Sigma_reg) <= 1 + m / lambda whatever the rank of
Q (n < m, duplicated coordinates), while shrinking a direction with eigenvalue q only by the
factor q / (q + lambda tr(Q)/m), i.e. by < 0.1 % for directions at least as strong as average."""


class Whitening(NamedTuple):
    """Leave-one-task-out ZCA whitening: embeddings of task t map to W_t (e - ebar_t)."""

    matrix: Array  # (tasks, m, m)  W_t = (Q_t + lambda tr(Q_t)/m I)^(-1/2), symmetric
    centre: Array  # (tasks, m)     ebar_t, pooled mean without task t


def _check_mask(mask, shape: tuple[int, int]) -> Array:
    if mask is None:
        return jnp.ones(shape, dtype=bool)
    mask = jnp.asarray(mask)
    if mask.shape != shape:
        raise ValueError(f"mask must have shape {shape}, got {mask.shape}")
    if mask.dtype != jnp.bool_:
        raise ValueError(f"mask must be boolean, got dtype {mask.dtype}")
    return mask


def _loto_moments(e: Array, mask: Array):
    """Leave-one-task-out mean (tasks, m) and covariance Q_t (tasks, m, m) by downdates."""
    dtype = e.dtype
    w = mask.astype(dtype)  # (tasks, n)
    total = jnp.sum(w)
    # Shift by the pooled mean before forming second moments: covariances are shift invariant and
    # the downdate O - O_t - C ebar ebar^T then does not cancel large numbers in float32.
    shift = jnp.einsum("tn,tnm->m", w, e, precision=_HI) / total
    x = (e - shift) * w[..., None]  # padded rows -> 0
    s_t = jnp.sum(x, axis=1)  # (tasks, m)       per-task sums
    o_t = jnp.einsum("tni,tnj->tij", x, x, precision=_HI)  # (tasks, m, m) per-task outer sums
    c_t = jnp.sum(w, axis=1)  # (tasks,)
    s = jnp.sum(s_t, axis=0) - s_t  # downdates: pooled totals minus task t
    o = jnp.sum(o_t, axis=0) - o_t
    c = total - c_t
    mean = s / c[:, None]
    q = (o - c[:, None, None] * mean[:, :, None] * mean[:, None, :]) / (c - 1.0)[:, None, None]
    return mean + shift, 0.5 * (q + jnp.swapaxes(q, -1, -2))


def _ridge(ridge: Array, trace: Array, m: int) -> Array:
    tau = ridge * trace / m  # lambda tr(Q)/m
    # A pool with zero variance has nothing to whiten: use tau = 1 (W = I) rather than 1/0.
    return jnp.where(tau > 0, tau, jnp.ones_like(tau))


@jax.jit
def _loto_whitening(e: Array, mask: Array, ridge: Array) -> Whitening:
    centre, q = _loto_moments(e, mask)
    evals, evecs = jax.vmap(jnp.linalg.eigh)(q)
    evals = jnp.maximum(evals, 0.0)
    tau = _ridge(ridge, jnp.sum(evals, axis=-1, keepdims=True), e.shape[-1])
    scale = jax.lax.rsqrt(evals + tau)
    matrix = jnp.einsum("tij,tj,tkj->tik", evecs, scale, evecs, precision=_HI)
    return Whitening(matrix.astype(e.dtype), centre.astype(e.dtype))


def whiten_for_gram(e: Array, mask: Array, ridge: Array) -> Array:
    """Unchecked kernel: L_t^-1 (e - ebar_t) with L_t L_t^T = Sigma_reg (Cholesky), (tasks, n, m).

    Inner products equal those of the ZCA-whitened W_t (e - ebar_t) (both transforms M
    satisfy M^T M = Sigma_reg^-1), and both attack statistics depend on the embeddings only
    through inner products, so the attacks use this: a Cholesky factor and a triangular
    solve instead of an eigendecomposition. tr(Q_t) here is the trace (the eigenvalue sum
    of ``loto_whitening`` before its clamp at 0, equal up to rounding).
    """
    centre, q = _loto_moments(e, mask)
    m = e.shape[-1]
    tau = _ridge(ridge, jnp.trace(q, axis1=-2, axis2=-1)[:, None], m)
    chol = jnp.linalg.cholesky(q + tau[..., None] * jnp.eye(m, dtype=q.dtype))
    x = jnp.swapaxes(e - centre[:, None, :], -1, -2)  # (tasks, m, n)
    y = jax.scipy.linalg.solve_triangular(chol, x, lower=True)
    return jnp.swapaxes(y, -1, -2).astype(e.dtype)


def loto_whitening(
    embeddings_by_task: Array, *, mask: Array | None = None, ridge: float = DEFAULT_RIDGE
) -> Whitening:
    """Leave-one-task-out ZCA whitening of the adversary's pool (A.7.1).

    Args:
      embeddings_by_task: (tasks, n, m) the adversary's pool, padded per task.
      mask: (tasks, n) bool, True for real rows (ragged pools); default all rows.
      ridge: lambda >= 0, relative ridge: Sigma_reg = Q_t + lambda tr(Q_t)/m I (see
        ``DEFAULT_RIDGE``). Eigenvalues of Q_t are clamped at 0 before the ridge is added.

    Returns:
      ``Whitening(matrix (tasks, m, m), centre (tasks, m))``: W_t = Sigma_reg^(-1/2) and ebar_t,
      from every pooled row except task t's (downdates of the pooled sums). Needs at least 2
      rows outside every task.
    """
    e = check_embeddings(
        "embeddings_by_task", embeddings_by_task, min_rank=3, layout="(tasks, n, m)"
    )
    if e.ndim != 3:
        raise ValueError(f"embeddings_by_task must have shape (tasks, n, m), got {e.shape}")
    if e.shape[0] < 2:
        raise ValueError(f"embeddings_by_task needs >= 2 tasks, got {e.shape[0]}")
    mask = _check_mask(mask, e.shape[:2])
    ridge = check_finite_float("ridge", ridge)
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0, got {ridge!r}")
    try:  # host check; skipped when called under jit (then the caller guarantees it)
        counts = np.asarray(mask).sum(axis=1)
    except jax.errors.TracerArrayConversionError:
        counts = None
    if counts is not None and int(counts.sum() - counts.max()) < 2:
        raise ValueError(
            "embeddings_by_task must leave >= 2 rows outside every task, "
            f"got {int(counts.sum() - counts.max())}"
        )
    return _loto_whitening(e, mask, jnp.asarray(ridge, dtype=e.dtype))


def apply_whitening(embeddings: Array, whitening: Whitening) -> Array:
    """Whiten task t's embeddings: W_t (e - ebar_t).

    Args:
      embeddings: (tasks, ..., m), leading axis the task (any number of middle axes).
      whitening: from ``loto_whitening`` (same number of tasks and m).

    Returns:
      (tasks, ..., m) whitened embeddings.
    """
    e = jnp.asarray(embeddings)
    matrix, centre = whitening
    if e.ndim < 2 or e.shape[0] != matrix.shape[0] or e.shape[-1] != matrix.shape[-1]:
        raise ValueError(
            f"embeddings must have shape (tasks={matrix.shape[0]}, ..., m={matrix.shape[-1]}), "
            f"got {e.shape}"
        )
    return _apply_whitening(e, matrix, centre)


@jax.jit
def _apply_whitening(e: Array, matrix: Array, centre: Array) -> Array:
    flat = e.reshape(e.shape[0], -1, e.shape[-1]) - centre[:, None, :]
    out = jnp.einsum("tij,tnj->tni", matrix, flat, precision=_HI)
    return out.reshape(e.shape)
