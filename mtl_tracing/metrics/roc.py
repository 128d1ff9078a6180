"""ROC metrics for tracing attacks (App. A.4): ROC curve, AUC, TPR at fixed FPR, percentile table.

The positive class is IN; a score is predicted IN when ``score > threshold``. Scalar metrics
flatten (pool) inputs of any shape. Everything is jittable and vmappable with static shapes:
output lengths depend only on input sizes. Public functions validate concrete inputs in Python
(non-finite scores, empty classes, bad targets, negative weights) and then call jitted kernels;
under ``jit``/``vmap`` only shape checks run. Outputs keep the input float dtype.

Optional non-negative integer per-score ``weights_in`` / ``weights_out`` are multiplicities: a
weighted metric equals the metric of the data with each score repeated that many times. The
grouped bootstrap (:mod:`mtl_tracing.metrics.bootstrap`) uses them so that rank statistics
never re-sort per replicate.

Exactness on every backend: true and false positives are integer counts (``count_dtype``:
int32, int64 under ``jax_enable_x64``), and each rate is one division of two counts with the
endpoint pinned (:func:`rate`: a count equal to its total is exactly 1). A float cumulative sum
divided by its last entry is not: on a GPU it gave a TPR of 0.99999994 at FPR 1, since XLA may
sum in another order or divide through a reciprocal. Inputs whose total weight would overflow
the count dtype are refused.

Besides the API in ``__all__``, this module publishes for the bootstrap its score checks
(``check_scores``, ``float_dtype``, ``count_dtype``, ``is_tracer``) and unchecked kernels on
pre-sorted scores (``SortedScores``, ``sort_pooled``, ``rate``, ``auc_from_sorted``,
``tpr_from_sorted``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mtl_tracing.metrics._fast import count_dtype, rate, sort_floats

__all__ = [
    "Roc",
    "TprAtFpr",
    "PercentileTable",
    "roc_curve",
    "auc",
    "tpr_at_fpr",
    "tpr_at_fpr_from_roc",
    "percentile_table",
]

Array = jax.Array


class Roc(NamedTuple):
    """Empirical ROC curve with ``n = n_in + n_out`` scores (tied scores share one point)."""

    fpr: Array  # (n + 1,) non-decreasing, from 0 to 1
    tpr: Array  # (n + 1,) non-decreasing, from 0 to 1
    thresholds: Array  # (n + 1,) rule ``score > t``: largest score predicted OUT, -inf at the end


class TprAtFpr(NamedTuple):
    """Exact operating point: largest TPR whose realised FPR <= the target (shape of target)."""

    tpr: Array
    fpr: Array  # realised FPR (<= target; below it when ties make the target unreachable)
    threshold: Array  # rule ``score > threshold``; -inf when every score is predicted IN


class PercentileTable(NamedTuple):
    """Blind percentile thresholds of the pooled scores (paper Tables 1-2); all shape (p,)."""

    percentile: Array
    threshold: Array
    tpr: Array
    fpr: Array
    balanced_accuracy: Array  # (TPR + 1 - FPR) / 2


# ----------------------------------------------------------------------------- validation


def is_tracer(x: object) -> bool:
    """Whether ``x`` is a JAX tracer (inside ``jit``/``vmap``: no value checks possible)."""
    return isinstance(x, jax.core.Tracer)


def float_dtype(*arrays) -> jnp.dtype:
    """The float dtype of the metrics of ``arrays``: their result type, or the default float."""
    dt = jnp.result_type(*arrays)
    if not jnp.issubdtype(dt, jnp.floating):
        dt = jnp.result_type(float)
    return dt


def check_scores(name: str, x: object) -> Array:
    """Return ``x`` as a JAX array; concrete inputs must be non-empty, real and finite.

    Tracers are only checked for size; errors name ``name`` and what was received.
    """
    if is_tracer(x):
        if x.size == 0:
            raise ValueError(f"{name} must be non-empty, got shape {x.shape}")
        return x
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"{name} must be non-empty, got shape {arr.shape}")
    bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
    if bad:
        raise ValueError(f"{name} must be finite, got {bad} non-finite value(s)")
    return jnp.asarray(x)


def _check_weights(name: str, w: object, scores: Array) -> tuple[Array, int]:
    """Weights must match the scores' shape and be integers (or integral floats) >= 0, not all
    zero. Returns them as a flat ``count_dtype`` array and their total (0 when traced)."""
    ct = count_dtype()
    if w is None:
        return jnp.ones((scores.size,), ct), scores.size
    if not is_tracer(w):
        arr = np.asarray(w)
        if arr.shape != tuple(scores.shape):
            raise ValueError(f"{name} must have shape {tuple(scores.shape)}, got {arr.shape}")
        if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
            raise ValueError(f"{name} must be integer multiplicities, got dtype {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            raise ValueError(f"{name} must be finite, got {bad} non-finite value(s)")
        neg = int(np.count_nonzero(arr < 0))
        if neg:
            raise ValueError(f"{name} must be >= 0, got {neg} negative value(s)")
        frac = int(np.count_nonzero(arr != np.round(arr)))
        if frac:
            raise ValueError(
                f"{name} must be integer multiplicities, got {frac} fractional value(s)"
            )
        total = int(np.sum(arr, dtype=np.float64))
        if total == 0:
            raise ValueError(f"{name} must have a positive sum, got all zeros")
        return jnp.asarray(arr.ravel(), dtype=ct), total
    if tuple(w.shape) != tuple(scores.shape):
        raise ValueError(f"{name} must have shape {tuple(scores.shape)}, got {w.shape}")
    return w.astype(ct).ravel(), 0


def check_count_range(total: int, what: str = "total weight") -> None:
    """``ValueError`` unless ``total`` integer counts fit ``count_dtype`` (host, static)."""
    limit = int(jnp.iinfo(count_dtype()).max)
    if total > limit:
        raise ValueError(
            f"{what} must be <= {limit} to count exactly in {count_dtype()}, got {total} "
            "(enable jax_enable_x64 for int64 counts)"
        )


def _prepare(scores_in, scores_out, weights_in, weights_out):
    s_in = check_scores("scores_in", scores_in)
    s_out = check_scores("scores_out", scores_out)
    w_in, n_in = _check_weights("weights_in", weights_in, s_in)
    w_out, n_out = _check_weights("weights_out", weights_out, s_out)
    check_count_range(max(n_in + n_out, s_in.size + s_out.size))
    dt = float_dtype(s_in, s_out)
    return s_in.astype(dt).ravel(), s_out.astype(dt).ravel(), w_in, w_out


def _check_fpr(fpr: object) -> Array:
    if is_tracer(fpr):
        return fpr
    arr = np.asarray(fpr, dtype=float)
    if arr.ndim > 1:
        raise ValueError(f"fpr must be a scalar or 1-D, got shape {arr.shape}")
    bad = ~(np.isfinite(arr) & (arr > 0) & (arr <= 1))
    if np.any(bad):
        raise ValueError(f"fpr must be in (0, 1], got {arr[bad].tolist()}")
    return arr


# ----------------------------------------------------------------------------- kernels


class SortedScores(NamedTuple):
    """Pooled scores sorted descending, with the tie-group structure (all shape (n,)).

    Built by :func:`sort_pooled`; the ``*_from_sorted`` kernels read it in O(n).
    """

    scores: Array  # sorted descending
    order: Array  # permutation of the pooled index (IN first, then OUT)
    is_in: Array  # bool, label of each sorted score
    group_start: Array  # index of the first member of each score's tie group
    group_end: Array  # index of the last member of each score's tie group
    next_score: Array  # largest score strictly below the tie group, -inf if none


def sort_pooled(s_in: Array, s_out: Array) -> SortedScores:
    """Unchecked kernel: sort the pooled scores ``s_in`` (n_in,), ``s_out`` (n_out,) once.

    O(n log n); every ``*_from_sorted`` statistic is then O(n) given sorted weights.
    """
    n_in = s_in.shape[0]
    pooled = jnp.concatenate([s_in, s_out])
    n = pooled.shape[0]
    idx = jnp.arange(n, dtype=count_dtype())
    neg_sorted, order = jax.lax.sort((-pooled, idx), num_keys=1)
    s = -neg_sorted
    new = s[1:] != s[:-1]
    is_last = jnp.concatenate([new, jnp.ones((1,), bool)])
    is_first = jnp.concatenate([jnp.ones((1,), bool), new])
    group_end = jax.lax.cummin(jnp.where(is_last, idx, n), reverse=True)
    group_start = jax.lax.cummax(jnp.where(is_first, idx, 0))
    nxt = jnp.concatenate([s, jnp.full((1,), -jnp.inf, s.dtype)])[group_end + 1]
    return SortedScores(s, order, order < n_in, group_start, group_end, nxt)


def _positives(srt: SortedScores, w: Array) -> tuple[Array, Array]:
    """Integer (TP, FP) after each score's tie group (n,): the IN and OUT weight ranked at or
    above it. ``w`` (n,) are the integer weights in sorted order (``w_pooled[srt.order]``)."""
    tp = jnp.cumsum(jnp.where(srt.is_in, w, 0))[srt.group_end]
    fp = jnp.cumsum(jnp.where(srt.is_in, 0, w))[srt.group_end]
    return tp, fp


def _roc_from_sorted(srt: SortedScores, w: Array) -> Roc:
    """ROC points (FPR, TPR) after each tie group, repeated for every member; O(n).

    ``w`` (n,) are the integer weights in sorted order (``w_pooled[srt.order]``).
    """
    dt = srt.scores.dtype
    tp, fp = _positives(srt, w)
    zero = jnp.zeros((1,), dt)
    tpr = jnp.concatenate([zero, rate(tp, tp[-1], dt)])
    fpr = jnp.concatenate([zero, rate(fp, fp[-1], dt)])
    thr = jnp.concatenate([srt.scores[:1], srt.next_score])
    return Roc(fpr, tpr, thr)


def auc_from_sorted(srt: SortedScores, w: Array) -> Array:
    """Unchecked kernel: Mann-Whitney AUC from sorted data and sorted weights ``w`` (n,); O(n).

    ``w`` are the integer weights in sorted order (``w_pooled[srt.order]``).

    AUC = C / (C + D) with C = sum_j w_j [W_in(> s_j) + W_in(= s_j) / 2] and
    D = sum_j w_j [W_in(< s_j) + W_in(= s_j) / 2] over OUT scores j (C + D = W_in W_out), so
    perfectly separated classes give exactly 1 (and exactly 0) in any dtype, whatever the
    weights (a trapezoid over a float32 ROC does not). The IN weights above, tied and below
    are integer counts; the sums over OUT scores are in the scores' dtype.
    """
    dt = srt.scores.dtype
    w_in = jnp.where(srt.is_in, w, 0)
    c = jnp.concatenate([jnp.zeros((1,), w.dtype), jnp.cumsum(w_in)])  # IN weight before i
    c = c.astype(dt)  # exact counts, then one conversion (XLA:CPU gathers floats faster)
    above = c[srt.group_start]
    tied = c[srt.group_end + 1] - above
    below = c[-1] - above - tied  # IN weight strictly below the group
    w_out = jnp.where(srt.is_in, 0, w).astype(dt)
    # Concordant and discordant mass as two sums of non-negative terms, no division before the
    # end: AUC = C / (C + D), so D = 0 gives exactly 1 and C = 0 exactly 0.
    conc = jnp.sum(w_out * (above + tied / 2))
    disc = jnp.sum(w_out * (below + tied / 2))
    return conc / (conc + disc)


def _tpr_at_fpr_from_roc(roc: Roc, target: Array) -> TprAtFpr:
    """Largest TPR with realised FPR <= target; among equal TPRs the smallest FPR."""
    last = jnp.searchsorted(roc.fpr, target, side="right") - 1  # fpr[0] = 0 so last >= 0
    best = roc.tpr[last]
    j = jnp.searchsorted(roc.tpr, best, side="left")
    return TprAtFpr(roc.tpr[j], roc.fpr[j], roc.thresholds[j])


def tpr_from_sorted(srt: SortedScores, w: Array, fpr: float) -> Array:
    """Unchecked kernel: ``tpr_at_fpr(...).tpr`` from sorted data and sorted weights (n,); O(n).

    The largest TPR over tie-group ends whose FPR <= ``fpr``, without materialising the ROC:
    TP and FP are non-decreasing along the sorted order.
    """
    dt = srt.scores.dtype
    tp, fp = _positives(srt, w)
    ok = fp.astype(dt) <= jnp.asarray(fpr, dt) * fp[-1].astype(dt)
    return rate(jnp.max(jnp.where(ok, tp, 0)), tp[-1], dt)


def _sorted_weights(srt: SortedScores, w_in: Array, w_out: Array) -> Array:
    return jnp.concatenate([w_in, w_out])[srt.order]


@jax.jit
def _roc_kernel(s_in, s_out, w_in, w_out) -> Roc:
    srt = sort_pooled(s_in, s_out)
    return _roc_from_sorted(srt, _sorted_weights(srt, w_in, w_out))


@jax.jit
def _auc_kernel(s_in, s_out, w_in, w_out) -> Array:
    srt = sort_pooled(s_in, s_out)
    return auc_from_sorted(srt, _sorted_weights(srt, w_in, w_out))


@jax.jit
def _tpr_kernel(s_in, s_out, w_in, w_out, target) -> TprAtFpr:
    # Admissibility on counts, FP <= target W_out (as ``tpr_from_sorted``), not on rounded
    # rates: XLA divides by a broadcast scalar through its reciprocal, so a rate k / W can be
    # an ulp above the target k / W it equals (jaxlib >= 0.10.1 on CPU, and GPUs).
    srt = sort_pooled(s_in, s_out)
    dt = srt.scores.dtype
    tp, fp = _positives(srt, _sorted_weights(srt, w_in, w_out))
    zero = jnp.zeros((1,), tp.dtype)
    tp, fp = jnp.concatenate([zero, tp]), jnp.concatenate([zero, fp])
    budget = target.astype(dt) * fp[-1].astype(dt)
    last = jnp.searchsorted(fp.astype(dt), budget, side="right") - 1  # fp[0] = 0: last >= 0
    j = jnp.searchsorted(tp, tp[last], side="left")  # among equal TPRs, the smallest FPR
    thr = jnp.concatenate([srt.scores[:1], srt.next_score])
    return TprAtFpr(rate(tp[j], tp[-1], dt), rate(fp[j], fp[-1], dt), thr[j])


@jax.jit
def _percentile_kernel(s_in, s_out, q, frac) -> PercentileTable:
    # ``frac`` = q / 100 is computed by the caller (in float64 on the host when concrete):
    # jnp.percentile's own q / 100 rounds in float32 (75 -> 0.7499999), moving thresholds.
    pooled = sort_floats(jnp.concatenate([s_in, s_out]))
    # jnp.quantile(pooled, frac, method="linear") on the sorted scores, without its float sort.
    pos = frac * (pooled.shape[0] - 1)
    low, high = jnp.floor(pos), jnp.ceil(pos)
    w_high = pos - low
    thr = pooled[low.astype(jnp.int32)] * (1 - w_high) + pooled[high.astype(jnp.int32)] * w_high
    dt, ct = s_in.dtype, count_dtype()
    tp = jnp.sum(s_in[None, :] > thr[:, None], axis=1, dtype=ct)
    fp = jnp.sum(s_out[None, :] > thr[:, None], axis=1, dtype=ct)
    tpr = rate(tp, jnp.asarray(s_in.shape[0], ct), dt)
    fpr = rate(fp, jnp.asarray(s_out.shape[0], ct), dt)
    return PercentileTable(q, thr, tpr, fpr, (tpr + 1 - fpr) / 2)


# ----------------------------------------------------------------------------- public metrics


def roc_curve(scores_in, scores_out, *, weights_in=None, weights_out=None) -> Roc:
    """Empirical ROC curve, IN = positive, rule ``score > threshold``.

    Args:
      scores_in: IN scores z, any shape (flattened), n_in values.
      scores_out: OUT scores z, any shape (flattened), n_out values.
      weights_in, weights_out: optional non-negative integer multiplicities, shaped like the
        scores (integral floats are accepted).

    Returns:
      ``Roc(fpr, tpr, thresholds)``, each of shape (n_in + n_out + 1,), from (0, 0) to (1, 1).
      Tied scores move diagonally: every member of a tie group gets the point after the whole
      group, so the curve has repeated points and a fixed length.
    """
    return _roc_kernel(*_prepare(scores_in, scores_out, weights_in, weights_out))


def auc(scores_in, scores_out, *, weights_in=None, weights_out=None) -> Array:
    """Area under the ROC curve, P(z_IN > z_OUT) + P(z_IN = z_OUT) / 2 (Mann-Whitney).

    Equals the trapezoid area of :func:`roc_curve`; weights are multiplicities. Scalar.
    """
    return _auc_kernel(*_prepare(scores_in, scores_out, weights_in, weights_out))


def tpr_at_fpr(scores_in, scores_out, fpr, *, weights_in=None, weights_out=None) -> TprAtFpr:
    """Exact TPR at a target FPR (no interpolation).

    Among the rules ``score > t``, picks the largest TPR whose realised FPR <= ``fpr`` (and,
    among equal TPRs, the smallest FPR). With ties the realised FPR may be below the target.

    Args:
      fpr: target(s) in (0, 1], scalar or shape (m,).

    Returns:
      ``TprAtFpr(tpr, fpr, threshold)`` with the shape of the target.
    """
    s_in, s_out, w_in, w_out = _prepare(scores_in, scores_out, weights_in, weights_out)
    target = jnp.asarray(_check_fpr(fpr), dtype=s_in.dtype)
    return _tpr_kernel(s_in, s_out, w_in, w_out, target)


def tpr_at_fpr_from_roc(roc: Roc, fpr) -> TprAtFpr:
    """:func:`tpr_at_fpr` read off an ROC from :func:`roc_curve` (no second sort).

    It compares the ROC's rounded rates with the target, so at a target within a float
    rounding of a grid point k / n_out it may differ from :func:`tpr_at_fpr`, which decides on
    counts.

    Args:
      roc: ``Roc`` of the scores.
      fpr: target(s) in (0, 1], scalar or shape (m,).

    Returns:
      ``TprAtFpr(tpr, fpr, threshold)`` with the shape of the target, equal to
      ``tpr_at_fpr(scores_in, scores_out, fpr)`` on the same scores.
    """
    if not isinstance(roc, Roc):
        raise ValueError(f"roc must be a Roc from roc_curve, got {type(roc).__name__}")
    target = jnp.asarray(_check_fpr(fpr), dtype=roc.fpr.dtype)
    return _tpr_from_roc_kernel(roc, target)


_tpr_from_roc_kernel = jax.jit(_tpr_at_fpr_from_roc)


def percentile_table(scores_in, scores_out, percentiles=(50.0, 75.0, 90.0)) -> PercentileTable:
    """Blind thresholds at percentiles of the pooled IN + OUT scores (Tables 1-2).

    Thresholds use linear interpolation (as ``numpy.percentile``); then TPR = P(z_IN > t),
    FPR = P(z_OUT > t) and balanced accuracy (TPR + 1 - FPR) / 2. All fields of shape (p,).
    """
    s_in, s_out, _, _ = _prepare(scores_in, scores_out, None, None)
    if not is_tracer(percentiles):
        q = np.asarray(percentiles, dtype=float)
        if q.ndim != 1 or q.size == 0:
            raise ValueError(f"percentiles must be a non-empty 1-D sequence, got {percentiles!r}")
        bad = ~(np.isfinite(q) & (q > 0) & (q < 100))
        if np.any(bad):
            raise ValueError(f"percentiles must be in (0, 100), got {q[bad].tolist()}")
    dt = s_in.dtype
    if is_tracer(percentiles):
        q = jnp.asarray(percentiles, dt)
        return _percentile_kernel(s_in, s_out, q, q / 100)
    q = np.asarray(percentiles, dtype=np.float64)
    return _percentile_kernel(s_in, s_out, jnp.asarray(q, dt), jnp.asarray(q / 100, dt))
