"""Low-level kernels shared by the Gaussian game's samplers (unchecked, pure, traceable).

``score_batches`` scores faithful challenge batches (the one-shot, streamed and release
faithful samplers); ``sufficient_draws``, ``sufficient_scores`` are the sufficient sampler's
one coordinate of draws and its last step; ``orthogonal_squares`` and ``norms_from`` add the
squared norms the optimal statistic needs (:mod:`~mtl_tracing.gaussian.optimal`). Notation of
:mod:`~mtl_tracing.gaussian.game`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from mtl_tracing import flat_random
from mtl_tracing.gaussian.config import GameShape

__all__ = [
    "score_batches",
    "sufficient_draws",
    "sufficient_scores",
    "static_shape_args",
    "row_block",
    "orthogonal_squares",
    "norms_from",
]


def score_batches(batches, mu_bar, alpha, norms: bool = False) -> tuple:
    """Unchecked kernel: z = <mean(B) - mu_bar, alpha> of each (T, k, d) batch, (T,) each;
    with ``norms`` then ||alpha||^2 and ||mean(B) - mu_bar||^2 of each batch (a faithful
    game's outputs, in :class:`GameScores` then ``game.GameNorms`` order)."""
    betas = [jnp.mean(b, axis=1) - mu_bar for b in batches]
    zs = tuple(jnp.sum(beta * alpha, axis=-1) for beta in betas)
    if not norms:
        return zs
    return zs + (jnp.sum(alpha * alpha),) + tuple(jnp.sum(beta * beta, axis=-1) for beta in betas)


def sufficient_draws(keys, task_std, sample_std, *, shape: GameShape, dtype):
    """Unchecked kernel: one coordinate's worth of the sufficient sampler's variables, (T,) each.

    ``keys`` = (k_mu, k_b, k_r, k_w, k_v). Returns (b, m, w, v): strong batch means b_i, task
    sample means m_i (b_i with the other N - k samples r_i), weak batch means w_i and OUT batch
    means v_j, all centred at mu_bar (see ``game._sufficient_game``). Shared with the DP release.
    """
    T, N, _d, k = shape
    k_mu, k_b, k_r, k_w, k_v = keys
    mu = task_std * jax.random.normal(k_mu, (T,), dtype)
    b = mu + sample_std * jax.random.normal(k_b, (T,), dtype) / math.sqrt(k)
    if k < N:
        r = mu + sample_std * jax.random.normal(k_r, (T,), dtype) / math.sqrt(N - k)
        m = (k * b + (N - k) * r) / N
    else:
        m = b
    w = mu + sample_std * jax.random.normal(k_w, (T,), dtype) / math.sqrt(k)
    v = jnp.sqrt(task_std**2 + sample_std**2 / k) * jax.random.normal(k_v, (T,), dtype)
    return b, m, w, v


def sufficient_scores(b, alpha1, w, v, A, c_weak, gamma):
    """(strong, weak, out) from the draws, alpha_1 = mean_i m_i, A, c_weak and the
    Gamma(d/2) variate (``game._sufficient_game``'s last step)."""
    # c_strong / A = 1 exactly; c_out = 0.
    eps_strong = b - alpha1
    eps_weak = w - (c_weak / A) * alpha1
    eps_out = v
    r2 = A * 2.0 * gamma  # ||alpha||^2 ~ A chi2_d
    root = jnp.sqrt(r2)
    strong = r2 + root * eps_strong
    weak = (c_weak / A) * r2 + root * eps_weak
    out = root * eps_out
    return strong, weak, out


def static_shape_args(shape: GameShape) -> tuple:
    """The shape arguments of :func:`orthogonal_squares` for a static ``shape``: T, N, k, 1/T,
    1/N, 1/k, 1/sqrt(k), 1/sqrt(max(N - k, 1)) and the d - 1 rows (Python numbers)."""
    T, N, d, k = shape
    roots = (1.0 / math.sqrt(k), 1.0 / math.sqrt(max(N - k, 1)))
    return (T, N, k, 1.0 / T, 1.0 / N, 1.0 / k, *roots, d - 1)


def row_block(width: int, rows: int) -> int:
    """Rows (coordinates orthogonal to alpha) drawn together by :func:`orthogonal_squares`."""
    return max(1, min(rows, (1 << 16) // width))


def orthogonal_squares(
    key, task_std, sample_std, ratios, noise_std=None, *, shape_args, width, rows, dtype
):
    """Unchecked kernel: the squared norms of the 3T batch means orthogonal to alpha, (3, width).

    Why O(T d) and not O(T): per coordinate, beta = (c/A) alpha + rho with rho ~ N(0,
    Sigma_cond) independent of alpha (``game._sufficient_game``), so ||beta||^2 = (beta . alpha
    / ||alpha||)^2 + ||rho_perp||^2, where rho_perp has d - 1 i.i.d. rows ~ N(0, Sigma_cond).
    Sigma_cond couples all tasks (through alpha_1 = mean_i m_i, a rank-one term), so the joint
    law of the 3T squared norms is the diagonal of a Wishart(d - 1, Sigma_cond), which no O(T)
    draw gives exactly. Each row here is one coordinate's worth of the sufficient sampler's
    draws (mu_i, b_i, r_i, w_i, v_j, as ``sufficient_draws``; alpha_1 plus ``noise_std`` times
    a normal for the release) regressed on alpha_1 with ``ratios`` = (c_strong / A, c_weak /
    A). ``shape_args`` = (T, N, k, 1/T, 1/N, 1/k, 1/sqrt(k), 1/sqrt(max(N - k, 1)), d - 1),
    concrete (:func:`static_shape_args`) or traced (a padded sweep program): tasks >= T and
    rows >= d - 1 of the ``width`` x ``rows`` static draw are masked out. Rows are drawn in a
    ``lax.map`` over blocks of :func:`row_block` rows, one (block, 5, width) draw each
    (memory O(block width)).
    """
    T, N, k, inv_t, inv_n, inv_k, inv_root_k, inv_root_rest, d_rows = shape_args
    if rows == 0:
        return jnp.zeros((3, width), dtype)
    block = row_block(width, rows)
    k_rows, k_noise = jax.random.split(key)
    sbar, s = task_std, sample_std
    kf, nf = jnp.asarray(k, dtype), jnp.asarray(N, dtype)
    tasks = jnp.arange(width) < T

    def block_sum(j):  # (3, width); a map without a carry (traceable inside shard_map too)
        z = flat_random.normal(jax.random.fold_in(k_rows, j), (block, 5, width), dtype)
        mu = sbar * z[:, 0]
        b = mu + s * z[:, 1] * inv_root_k
        r = mu + s * z[:, 2] * inv_root_rest
        m = jnp.where(k < N, (kf * b + (nf - kf) * r) * inv_n, b)
        w = mu + s * z[:, 3] * inv_root_k
        v = jnp.sqrt(sbar**2 + s**2 * inv_k) * z[:, 4]
        alpha1 = jnp.sum(jnp.where(tasks, m, 0), axis=-1, keepdims=True) * inv_t  # (block, 1)
        if noise_std is not None:
            e = jax.random.normal(jax.random.fold_in(k_noise, j), (block,), dtype)
            alpha1 = alpha1 + noise_std * e[:, None]
        res = jnp.stack([b - ratios[0] * alpha1, w - ratios[1] * alpha1, v], axis=1)
        real = (j * block + jnp.arange(block)) < d_rows
        return jnp.sum(jnp.where(real[:, None, None], res * res, 0), axis=0)

    return jnp.sum(jax.lax.map(block_sum, jnp.arange(-(-rows // block))), axis=0)


def norms_from(r2, ratios, draws, alpha1, rows) -> tuple:
    """Unchecked: the ``game.GameNorms`` fields of a sufficient-sampler game from R2 =
    ||alpha||^2, ``ratios`` (c_strong / A, c_weak / A), the draws (b, w, v) and alpha_1 of its
    first coordinate and the orthogonal squares ``rows`` (3, T): ||beta||^2 = (beta . alpha /
    ||alpha||)^2 + rows, where beta . alpha / ||alpha|| = (c/A) ||alpha|| + eps and eps = beta_1
    - (c/A) alpha_1 is the residual ``sufficient_scores`` uses (c/A = 0 for OUT)."""
    root = jnp.sqrt(r2)
    sq = []
    for i, (x, ratio) in enumerate(zip(draws, (*ratios, 0.0), strict=True)):
        along = ratio * root + (x - ratio * alpha1)
        sq.append(along * along + rows[i])
    return (r2, *sq)
