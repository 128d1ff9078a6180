"""Black-box task-inference attacks on embeddings (Sec. 5.1, App. A.1, A.7.1).

The attack layer sees only embeddings e = h_theta(x) (black box). For every task t the adversary
draws a challenge set of k embeddings and computes a statistic z; a task is called IN when
z > gamma.

Notation (argument -> paper symbol):

| argument | symbol | meaning |
|---|---|---|
| ``k`` / ``challenge`` | k | challenge set size (rows drawn without replacement) |
| ``m`` (last axis) | d in A.7.1, "embedding dimension" | embedding dimension |
| ``trials`` | - | independent challenge draws per task (paper: 128, App. A.5.1) |
| ``ridge`` | lambda | relative ridge of the whitening, Sigma_reg = Q + lambda tr(Q)/m I |
| tasks | 2T | T IN tasks then T OUT tasks |

Statistics (Algorithms 1 and 2):

* ``variance_statistic``: tr(Q) with Q the *unbiased* (ddof = 1) sample covariance of the k
  embeddings, i.e. the sum of the m coordinate-wise variances. Algorithm 1 returns tr(Q); the text
  of Sec. 5.1 says "trace divided by the dimension": ``per_dimension=True`` gives tr(Q)/m. Both
  rank tasks identically (m is fixed), so ROC metrics do not depend on the choice.
* ``inner_product_statistic``: mean over the k(k-1)/2 pairs i < j of |<e_i, e_j>| (Algorithm 2;
  its line 10 prints <e_i, e_i>, a typo: that would be the squared norm, not a pairwise
  similarity, and contradicts "for all unique pairs (e_i, e_j)" on line 8).

Whitening (A.7.1), leave one task out. The *adversary's pool* is every embedding the adversary
holds for the attack: the challenge pools of all 2T tasks (IN tasks: training samples for the
strong adversary, held-out samples for the weak one; OUT tasks: their fresh samples). For task t
the mean ebar_t and covariance Q_t use the pool minus task t's own rows, so the transform does not
depend on the challenge task's data. They come from downdates of pooled sums (sum e, sum e e^T,
count), not recomputation: O(tasks n m^2 + tasks m^3). Then Sigma_reg = Q_t + lambda tr(Q_t)/m I
and the ZCA transform W_t = Sigma_reg^(-1/2) (``eigh``); embeddings become W_t (e - ebar_t).
The whitening is computed once per task, not per trial; since it is linear, whitening the pool
and then drawing challenge sets equals drawing then whitening.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from mtl_tracing._validate import check_finite_float, check_int

__all__ = [
    "ATTACKS",
    "DEFAULT_RIDGE",
    "Whitening",
    "GroupedScores",
    "AttackScores",
    "variance_statistic",
    "inner_product_statistic",
    "loto_whitening",
    "apply_whitening",
    "challenge_indices",
    "challenge_sets",
    "run_attacks",
    "evaluate",
    "embed_tasks",
]

ATTACKS = ("variance", "inner_product")

DEFAULT_RIDGE = 1e-3
"""Default lambda. The ridge is *relative* (lambda tr(Q)/m is lambda times the mean eigenvalue),
so the rule is scale invariant; it bounds cond(Sigma_reg) <= 1 + m / lambda whatever the rank of
Q (n < m, duplicated coordinates), while shrinking a direction with eigenvalue q only by the
factor q / (q + lambda tr(Q)/m), i.e. by < 0.1 % for directions at least as strong as average."""


class Whitening(NamedTuple):
    """Leave-one-task-out ZCA whitening: embeddings of task t map to W_t (e - ebar_t)."""

    matrix: Array  # (tasks, m, m)  W_t = (Q_t + lambda tr(Q_t)/m I)^(-1/2), symmetric
    centre: Array  # (tasks, m)     ebar_t, pooled mean without task t


class GroupedScores(NamedTuple):
    """Scores grouped by task (the metrics' grouped bootstrap resamples tasks, ``paired=False``)."""

    scores_in: Array  # (T_in, trials)
    scores_out: Array  # (T_out, trials)


class AttackScores(NamedTuple):
    """Scores of both attacks on the same challenge sets."""

    variance: GroupedScores  # Algorithm 1
    inner_product: GroupedScores  # Algorithm 2


# --------------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------------


def _check_embeddings(name: str, embeddings, min_rank: int = 2, layout="(..., k, m)") -> Array:
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
    e = _check_embeddings("embeddings", embeddings)
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
    e = _check_embeddings("embeddings", embeddings)
    k = e.shape[-2]
    if k < 2:
        raise ValueError(f"embeddings must have k >= 2 rows per challenge set, got k={k}")
    if cosine:
        norm = jnp.linalg.norm(e, axis=-1, keepdims=True)
        e = e / jnp.where(norm > 0, norm, jnp.ones_like(norm))
    gram = jnp.abs(jnp.einsum("...im,...jm->...ij", e, e))
    off_diag = jnp.sum(gram, axis=(-2, -1)) - jnp.trace(gram, axis1=-2, axis2=-1)
    # |G| is symmetric: the off-diagonal sum counts each pair i < j twice.
    return off_diag / (k * (k - 1))


# --------------------------------------------------------------------------------------------
# whitening (A.7.1)
# --------------------------------------------------------------------------------------------


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
    shift = jnp.einsum("tn,tnm->m", w, e) / total
    x = (e - shift) * w[..., None]  # padded rows -> 0
    s_t = jnp.sum(x, axis=1)  # (tasks, m)       per-task sums
    o_t = jnp.einsum("tni,tnj->tij", x, x)  # (tasks, m, m)  per-task sums of outer products
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
    matrix = jnp.einsum("tij,tj,tkj->tik", evecs, scale, evecs)
    return Whitening(matrix.astype(e.dtype), centre.astype(e.dtype))


def _whiten_for_gram(e: Array, mask: Array, ridge: Array) -> Array:
    """L_t^-1 (e - ebar_t) with L_t L_t^T = Sigma_reg (Cholesky), (tasks, n, m).

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
    e = _check_embeddings(
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
    out = jnp.einsum("tij,tnj->tni", matrix, flat)
    return out.reshape(e.shape)


# --------------------------------------------------------------------------------------------
# adversary sampling
# --------------------------------------------------------------------------------------------


def _row_uniforms(trial_key: Array, sizes: Array, n: int) -> Array:
    """(tasks, n) uniforms, -1 on rows beyond a task's pool size: those can never win, so the
    k largest of the valid rows are a uniform k-subset without replacement."""
    u = jax.random.uniform(trial_key, (sizes.shape[0], n))
    return jnp.where(jnp.arange(n) < sizes[:, None], u, -1.0)


def _indices_kernel(key: Array, sizes: Array, n: int, k: int, trials: int) -> Array:
    def one_trial(trial_key):
        return jax.lax.top_k(_row_uniforms(trial_key, sizes, n), k)[1]  # (tasks, k)

    return jax.vmap(one_trial)(jax.random.split(key, trials))


def _selection_kernel(key: Array, sizes: Array, n: int, k: int, trials: int) -> Array:
    """The sets of :func:`_indices_kernel` as 0/1 masks (trials, tasks, n), without ``top_k``.

    Row i is chosen when fewer than k rows rank ahead of it (larger uniform, or equal and a
    lower index: ``top_k``'s order), so the sets are the same as the indices' for a key.
    """
    order = jnp.arange(n)

    def one_trial(trial_key):
        u = _row_uniforms(trial_key, sizes, n)
        ui, uj = u[:, :, None], u[:, None, :]
        ahead = (uj > ui) | ((uj == ui) & (order[None, :] < order[:, None]))
        return jnp.sum(ahead, axis=-1) < k  # (tasks, n)

    return jax.vmap(one_trial)(jax.random.split(key, trials))


def _check_pool(pool, pool_sizes, k: int):
    pool = _check_embeddings("pool", pool, min_rank=3, layout="(tasks, n, m)")
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
    _, sizes = _check_pool(jnp.zeros((len(pool_sizes), n, 1)), np.asarray(pool_sizes), k)
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
    pool, sizes = _check_pool(pool, pool_sizes, k)
    idx = _jit_indices(key, sizes, pool.shape[1], k, trials)
    return _gather(pool, idx)


@jax.jit
def _gather(pool: Array, idx: Array) -> Array:
    # pool (tasks, n, m), idx (trials, tasks, k) -> (trials, tasks, k, m)
    return jax.vmap(lambda i: jnp.take_along_axis(pool, i[..., None], axis=1))(idx)


# --------------------------------------------------------------------------------------------
# attack sweep
# --------------------------------------------------------------------------------------------


def _gram_statistics(pool: Array, sizes: Array, select: Array, *, k: int, cosine: bool):
    """Algorithms 1 and 2 for every challenge set from per-task Gram matrices.

    pool (tasks, n, m), sizes (tasks,), select (trials, tasks, n) 0/1 masks of the k chosen
    rows -> (var, ip), each (trials, tasks). Equal to gathering the (trials, tasks, k, m) sets
    and calling :func:`variance_statistic` and :func:`inner_product_statistic`, but each set
    costs two quadratic forms s^T G s of an n x n Gram matrix instead of k m coordinates.
    With C = Gram of the rows centred at the task's pool mean (tr(Q) is shift invariant;
    centring keeps float32 free of cancellation), tr(Q) = [sum_i C_ii - (1/k) sum_ij C_ij] /
    (k - 1); the inner-product statistic is the off-diagonal sum of |G| over k (k - 1), G the
    Gram of the (cosine-normalised) rows.
    """
    n = pool.shape[1]
    valid = (jnp.arange(n) < sizes[:, None])[..., None]
    count = jnp.maximum(sizes, 1)[:, None, None].astype(pool.dtype)
    centred = pool - jnp.sum(jnp.where(valid, pool, 0), axis=1, keepdims=True) / count
    e = pool
    if cosine:
        norm = jnp.linalg.norm(e, axis=-1, keepdims=True)
        e = e / jnp.where(norm > 0, norm, jnp.ones_like(norm))
    grams = jnp.stack(
        [
            jnp.einsum("tim,tjm->tij", centred, centred),
            jnp.abs(jnp.einsum("tim,tjm->tij", e, e)),
        ],
        axis=-1,
    )  # (tasks, n, n, 2)
    hi = jax.lax.Precision.HIGHEST
    s = select.astype(pool.dtype)
    sg = jnp.einsum("rti,tijc->rtjc", s, grams, precision=hi)
    total = jnp.einsum("rtjc,rtj->rtc", sg, s, precision=hi)  # (trials, tasks, 2)
    diag = jnp.einsum("rti,tiic->rtc", s, grams, precision=hi)
    var = (diag[..., 0] - total[..., 0] / k) / (k - 1)
    ip = (total[..., 1] - diag[..., 1]) / (k * (k - 1))
    return var, ip


@functools.partial(
    jax.jit, static_argnames=("tasks_in", "k", "trials", "whiten", "cosine", "per_dimension")
)
def _run_kernel(key, pool, sizes, ridge, *, tasks_in, k, trials, whiten, cosine, per_dimension):
    if whiten:
        mask = jnp.arange(pool.shape[1]) < sizes[:, None]
        pool = _whiten_for_gram(pool, mask, ridge)
    select = _selection_kernel(key, sizes, pool.shape[1], k, trials)
    var, ip = _gram_statistics(pool, sizes, select, k=k, cosine=cosine)
    var, ip = var.T, ip.T  # (tasks, trials)
    if per_dimension:
        var = var / pool.shape[-1]
    return AttackScores(
        GroupedScores(var[:tasks_in], var[tasks_in:]),
        GroupedScores(ip[:tasks_in], ip[tasks_in:]),
    )


def _pad_to(pool: Array, n: int) -> Array:
    return jnp.pad(pool, ((0, 0), (0, n - pool.shape[1]), (0, 0)))


def run_attacks(
    key: Array,
    pool_in: Array,
    pool_out: Array,
    *,
    k: int,
    trials: int,
    whiten: bool,
    cosine: bool = False,
    per_dimension: bool = False,
    ridge: float = DEFAULT_RIDGE,
    sizes_in: Array | None = None,
    sizes_out: Array | None = None,
) -> AttackScores:
    """Run both attacks for ``trials`` challenge draws on every task (one compiled call).

    Args:
      key: typed PRNG key (challenge sampling).
      pool_in: (T_in, n_in, m) the adversary's pool for IN tasks (strong: training samples;
        weak: held-out samples), padded per task.
      pool_out: (T_out, n_out, m) fresh samples of OUT tasks, padded per task.
      k: challenge size (strong 8 / weak 4 in App. A.5.1); 2 <= k <= every pool size.
      trials: challenge draws per task (paper: 128).
      whiten: apply leave-one-task-out whitening (A.7.1), computed once per task over the
        pooled IN + OUT pools given here.
      cosine: Algorithm 2 on cosine-normalised embeddings.
      per_dimension: Algorithm 1 divided by m.
      ridge: lambda of the whitening.
      sizes_in, sizes_out: (T_in,), (T_out,) real rows per task (ragged pools).

    Returns:
      ``AttackScores`` with ``scores_in (T_in, trials)`` and ``scores_out (T_out, trials)`` for
      each attack. Larger scores mean "IN" (the paper's thresholding z > gamma).
    """
    k = check_int("challenge k", k, low=2)
    trials = check_int("trials", trials, low=1)
    ridge = check_finite_float("ridge", ridge)
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0, got {ridge!r}")
    pool_in, s_in = _check_pool(pool_in, sizes_in, k)
    pool_out, s_out = _check_pool(pool_out, sizes_out, k)
    if pool_in.shape[-1] != pool_out.shape[-1]:
        raise ValueError(
            f"pool_in and pool_out must have the same embedding dimension m, got "
            f"{pool_in.shape[-1]} and {pool_out.shape[-1]}"
        )
    dtype = jnp.result_type(pool_in.dtype, pool_out.dtype)
    n = max(pool_in.shape[1], pool_out.shape[1])
    pool = jnp.concatenate([_pad_to(pool_in, n), _pad_to(pool_out, n)]).astype(dtype)
    sizes = jnp.concatenate([s_in, s_out])
    if whiten and int(jnp.sum(sizes) - jnp.max(sizes)) < 2:
        raise ValueError("whitening needs >= 2 pooled rows outside every task")
    return _run_kernel(
        key,
        pool,
        sizes,
        jnp.asarray(ridge, dtype=dtype),
        tasks_in=pool_in.shape[0],
        k=k,
        trials=trials,
        whiten=bool(whiten),
        cosine=bool(cosine),
        per_dimension=bool(per_dimension),
    )


# --------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------


def evaluate(
    key: Array,
    scores: AttackScores,
    *,
    fprs: Sequence[float] = (0.01, 0.001),
    percentiles: Sequence[float] = (50.0, 75.0, 90.0),
    num_resamples: int = 200,
    level: float = 0.95,
    tpr_ci: bool = False,
) -> dict:
    """ROC summary of both attacks, CIs by resampling *tasks* (not pooled trials).

    Args:
      key: typed PRNG key for the bootstrap (``fold_in`` per attack).
      scores: from ``run_attacks``.
      fprs: target FPRs for the TPR (paper: 1% and 0.1%).
      percentiles: thresholds at these percentiles of the pooled scores (App. A.7 tables).
      num_resamples, level: bootstrap (``metrics.grouped_bootstrap(..., paired=False)``).
      tpr_ci: also bootstrap the TPR at each target FPR, on the AUC's replicates (at a target
        FPR below 1 / (OUT scores) the TPR and its CI are degenerate).

    Returns:
      ``{attack: {"auc", "auc_ci", "tpr_at_fpr": [{"target_fpr", ...TprAtFpr fields[, "ci"]}],
      "percentile_table"}}`` (CIs are ``metrics.Interval``) with JAX arrays
      and the metrics' NamedTuples (``results.to_jsonable`` turns it into JSON).
    """
    from mtl_tracing import metrics

    num_resamples = check_int("num_resamples", num_resamples, low=1)
    targets = tuple(float(f) for f in fprs)
    # One bootstrap per attack for the AUC and (if asked) every TPR: one sort, shared replicates.
    stats = (metrics.auc,)
    if tpr_ci:
        stats += tuple(metrics.TprAtFprStatistic(f) for f in targets)
    out = {}
    for i, name in enumerate(ATTACKS):  # two attacks, not trials or tasks
        s_in, s_out = getattr(scores, name)
        k_attack = jax.random.fold_in(key, i)
        auc_ci, *tpr_cis = metrics.grouped_bootstrap(
            jax.random.fold_in(k_attack, 0),
            stats,
            s_in,
            s_out,
            num_resamples=num_resamples,
            level=level,
            paired=False,
        )
        points = metrics.tpr_at_fpr(s_in, s_out, targets)
        tprs = []
        for j, f in enumerate(targets):  # a few target FPRs
            entry = _with_target(jax.tree.map(lambda x, j=j: x[j], points), f)
            if tpr_ci:
                entry["ci"] = tpr_cis[j]
            tprs.append(entry)
        out[name] = {
            "auc": auc_ci.estimate,
            "auc_ci": auc_ci,
            "tpr_at_fpr": tprs,
            "percentile_table": metrics.percentile_table(
                s_in, s_out, percentiles=tuple(float(p) for p in percentiles)
            ),
        }
    return out


def _with_target(result, target: float) -> dict:
    fields = result._asdict() if hasattr(result, "_asdict") else {"result": result}
    return {"target_fpr": float(target), **fields}


# --------------------------------------------------------------------------------------------
# encoder adapter
# --------------------------------------------------------------------------------------------


def embed_tasks(embed_fn: Callable[[Array], Array], x_by_task: Array) -> Array:
    """Query the shared representation on per-task data (the only access the attack needs).

    Args:
      embed_fn: batched black box x (b, d) -> h_theta(x) (b, m), e.g. ``model.embed`` of
        ``mtl_tracing.model`` or ``lambda x: model.embed(x)``.
      x_by_task: (tasks, n, d) samples grouped by task (padding rows are embedded too and
        ignored later through ``pool_sizes``).

    Returns:
      (tasks, n, m) embeddings, the pool layout used by ``run_attacks``.
    """
    x = jnp.asarray(x_by_task)
    if x.ndim < 3:
        raise ValueError(f"x_by_task must have shape (tasks, n, ...), got {x.shape}")
    flat = embed_fn(x.reshape((-1, *x.shape[2:])))
    return flat.reshape(x.shape[0], x.shape[1], -1)
