"""The attack sweep over tasks and trials, and its evaluation (ROC metrics, bootstrap CIs)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from mtl_tracing._validate import check_finite_float, check_int
from mtl_tracing.attacks.challenge import check_pool, selection_masks
from mtl_tracing.attacks.statistics import ATTACKS
from mtl_tracing.attacks.whitening import DEFAULT_RIDGE, whiten_for_gram

__all__ = [
    "GroupedScores",
    "AttackScores",
    "attack_kernel",
    "run_attacks",
    "evaluate",
    "embed_tasks",
]


class GroupedScores(NamedTuple):
    """Scores grouped by task (the metrics' grouped bootstrap resamples tasks, ``paired=False``)."""

    scores_in: Array  # (T_in, trials)
    scores_out: Array  # (T_out, trials)


class AttackScores(NamedTuple):
    """Scores of both attacks on the same challenge sets."""

    variance: GroupedScores  # Algorithm 1
    inner_product: GroupedScores  # Algorithm 2


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
    hi = jax.lax.Precision.HIGHEST  # attack scores: full float32 products on every backend
    grams = jnp.stack(
        [
            jnp.einsum("tim,tjm->tij", centred, centred, precision=hi),
            jnp.abs(jnp.einsum("tim,tjm->tij", e, e, precision=hi)),
        ],
        axis=-1,
    )  # (tasks, n, n, 2)
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
def attack_kernel(key, pool, sizes, ridge, *, tasks_in, k, trials, whiten, cosine, per_dimension):
    """Unchecked, traceable kernel of :func:`run_attacks` (jitted; static: tasks_in, k, trials,
    whiten, cosine, per_dimension): scores of both attacks for every trial, as an
    :class:`AttackScores`. Inputs as :func:`run_attacks` after its checks; vmappable over keys
    and pools (the pipeline vmaps it over the R runs)."""
    if whiten:
        mask = jnp.arange(pool.shape[1]) < sizes[:, None]
        pool = whiten_for_gram(pool, mask, ridge)
    select = selection_masks(key, sizes, pool.shape[1], k, trials)
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
    pool_in, s_in = check_pool(pool_in, sizes_in, k)
    pool_out, s_out = check_pool(pool_out, sizes_out, k)
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
    return attack_kernel(
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
        ``mtl_tracing.victims.model`` or ``lambda x: model.embed(x)``.
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
