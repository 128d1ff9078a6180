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

    Per coordinate, beta = (c/A) alpha + rho with rho independent of alpha
    (``game._sufficient_game``), so ||beta||^2 = (beta . alpha / ||alpha||)^2 + ||rho_perp||^2,
    where rho_perp has d - 1 i.i.d. rows: one coordinate's worth of the draws (mu_i, b_i, r_i,
    w_i, v_j, as ``sufficient_draws``) minus ``ratios`` = (c_strong / A, c_weak / A) times
    their alpha_1 = mean_i m_i (plus ``noise_std`` times a normal for the release). Each row,
    with a = sbar^2 + s^2/N = Var m_i and D_i = m_i - mean_j m_j:

    - strong: b_i = m_i + e_i, e_i ~ N(0, s^2 (1/k - 1/N)) independent of every m (Cov(b_i,
      m_i) = a), so rho_i = D_i + g_s + e_i with g_s = (1 - c_s/A) alpha_1 - (c_s/A) xi (zero
      without release noise, c_s = A);
    - weak: w_i = (sbar^2/a) m_i + f_i, f_i ~ N(0, sbar^2 + s^2/k - sbar^4/a) independent, so
      rho_i = (sbar^2/a) D_i + g_w + f_i, g_w likewise (zero without noise);
    - OUT: v_j, independent of everything: ||v_perp||^2 ~ (sbar^2 + s^2/k) chi2_{d-1}.

    The tasks are coupled only through the zero-sum D (a rank-one constraint): the 3T squared
    norms' joint law involves the diagonal of a Wishart(d - 1, a (I - 11^T/T)), which no O(T)
    draw gives exactly. So each row draws the T values m_i (and xi) and the sums U_i =
    sum_rows (D_i + g)^2 accumulate; the isotropic e and f then add in closed form: ||U + e||^2
    = (||U|| + sigma zeta)^2 + sigma^2 chi2_{d-2} (zeta ~ N(0, 1); e's part along U and
    across it). T + 1 normals per row (five T-vectors per row before) and O(T) per game.

    ``shape_args`` = (T, N, k, 1/T, 1/N, 1/k, 1/sqrt(k), 1/sqrt(max(N - k, 1)), d - 1),
    concrete (:func:`static_shape_args`) or traced (a padded sweep program): tasks >= T and
    rows >= d - 1 of the ``width`` x ``rows`` static draw are masked out. Rows are drawn in a
    ``lax.map`` over blocks of :func:`row_block` rows (memory O(block width)).
    """
    T, N, k, inv_t, inv_n, inv_k, _, _, d_rows = shape_args
    if rows == 0:
        return jnp.zeros((3, width), dtype)
    block = row_block(width, rows)
    k_rows, k_noise, k_zeta, k_chi = jax.random.split(key, 4)
    sbar2, s2 = jnp.asarray(task_std, dtype) ** 2, jnp.asarray(sample_std, dtype) ** 2
    a = sbar2 + s2 * inv_n
    gain_w = sbar2 / a  # Cov(w_i, m_i) / Var(m_i)
    tasks = jnp.arange(width) < T
    root_a = jnp.sqrt(a)

    def block_sum(j):  # (2, width); a map without a carry (traceable inside shard_map too)
        m = root_a * flat_random.normal(jax.random.fold_in(k_rows, j), (block, width), dtype)
        m = jnp.where(tasks, m, 0)
        alpha1 = jnp.sum(m, axis=-1, keepdims=True) * inv_t  # (block, 1)
        dev = jnp.where(tasks, m - alpha1, 0)  # D_i
        alpha = alpha1
        if noise_std is not None:
            e = jax.random.normal(jax.random.fold_in(k_noise, j), (block,), dtype)
            alpha = alpha1 + noise_std * e[:, None]
        g_s = alpha1 - ratios[0] * alpha  # common to the tasks of a row
        g_w = gain_w * alpha1 - ratios[1] * alpha
        res = jnp.stack([dev + g_s, gain_w * dev + g_w], axis=1)  # (block, 2, width)
        real = (j * block + jnp.arange(block)) < d_rows
        return jnp.sum(jnp.where(real[:, None, None], res * res, 0), axis=0)

    u2 = jnp.sum(jax.lax.map(block_sum, jnp.arange(-(-rows // block))), axis=0)  # (2, width)
    var_e = s2 * jnp.maximum(inv_k - inv_n, 0)  # 0 when k = N
    var_f = jnp.maximum(sbar2 + s2 * inv_k - gain_w * sbar2, 0)
    var_v = sbar2 + s2 * inv_k
    zeta = flat_random.normal(k_zeta, (2, width), dtype)
    chi = _chi2(k_chi, jnp.stack([d_rows - 1, d_rows - 1, d_rows]), width, dtype)  # (3, width)
    sd = jnp.sqrt(jnp.stack([var_e, var_f]))[:, None]
    along = jnp.sqrt(u2) + sd * zeta
    sq = jnp.concatenate([along * along + sd * sd * chi[:2], var_v * chi[2:]])
    return jnp.where((d_rows > 0) & tasks, sq, 0)


def _chi2(key, df, width: int, dtype):
    """(len(df), width) chi-square variates with ``df`` (traced ints) degrees of freedom; 0
    where df <= 0."""
    half = jnp.maximum(jnp.asarray(df, dtype), 1) / 2
    g = jax.random.gamma(key, half[:, None], (df.shape[0], width), dtype)
    return jnp.where(jnp.asarray(df)[:, None] > 0, 2 * g, 0)


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
