"""ROC metrics for tracing attacks (App. A.4): ROC curve, AUC, TPR at fixed FPR, percentile table.

The positive class is IN; a score is predicted IN when ``score > threshold``. Scalar metrics
flatten (pool) inputs of any shape. Everything is jittable and vmappable with static shapes:
output lengths depend only on input sizes. Public functions validate concrete inputs in Python
(non-finite scores, empty classes, bad targets, negative weights) and then call jitted kernels;
under ``jit``/``vmap`` only shape checks run. Outputs keep the input float dtype.

Optional non-negative per-score ``weights_in`` / ``weights_out`` are multiplicities: a weighted
metric equals the metric of the data with each score repeated that many times. The grouped
bootstrap uses them so that rank statistics never re-sort per replicate.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mtl_tracing._validate import check_int, check_probability

__all__ = [
    "Roc",
    "TprAtFpr",
    "PercentileTable",
    "Interval",
    "TprAtFprStatistic",
    "roc_curve",
    "auc",
    "tpr_at_fpr",
    "tpr_at_fpr_from_roc",
    "percentile_table",
    "grouped_bootstrap",
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


class Interval(NamedTuple):
    """Grouped-bootstrap percentile interval for a scalar statistic."""

    estimate: Array  # statistic on the original data
    low: Array  # (1 - level) / 2 quantile of the replicates
    high: Array  # (1 + level) / 2 quantile of the replicates
    std: Array  # bootstrap standard error (std of the replicates, ddof=1)


# ----------------------------------------------------------------------------- validation


def _is_tracer(x: object) -> bool:
    return isinstance(x, jax.core.Tracer)


def _float_dtype(*arrays) -> jnp.dtype:
    dt = jnp.result_type(*arrays)
    if not jnp.issubdtype(dt, jnp.floating):
        dt = jnp.result_type(float)
    return dt


def _check_scores(name: str, x: object) -> Array:
    """Return ``x`` as a JAX array; concrete inputs must be non-empty, real and finite."""
    if _is_tracer(x):
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


def _check_weights(name: str, w: object, scores: Array) -> Array | None:
    """Weights must match the scores' shape, be finite, >= 0 and not all zero."""
    if w is None:
        return None
    if not _is_tracer(w):
        arr = np.asarray(w)
        if arr.shape != tuple(scores.shape):
            raise ValueError(f"{name} must have shape {tuple(scores.shape)}, got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            raise ValueError(f"{name} must be finite, got {bad} non-finite value(s)")
        neg = int(np.count_nonzero(arr < 0))
        if neg:
            raise ValueError(f"{name} must be >= 0, got {neg} negative value(s)")
        if not np.any(arr > 0):
            raise ValueError(f"{name} must have a positive sum, got all zeros")
        return jnp.asarray(w)
    if tuple(w.shape) != tuple(scores.shape):
        raise ValueError(f"{name} must have shape {tuple(scores.shape)}, got {w.shape}")
    return w


def _prepare(scores_in, scores_out, weights_in, weights_out):
    s_in = _check_scores("scores_in", scores_in)
    s_out = _check_scores("scores_out", scores_out)
    w_in = _check_weights("weights_in", weights_in, s_in)
    w_out = _check_weights("weights_out", weights_out, s_out)
    dt = _float_dtype(s_in, s_out)
    s_in, s_out = s_in.astype(dt).ravel(), s_out.astype(dt).ravel()
    w_in = jnp.ones_like(s_in) if w_in is None else w_in.astype(dt).ravel()
    w_out = jnp.ones_like(s_out) if w_out is None else w_out.astype(dt).ravel()
    return s_in, s_out, w_in, w_out


def _check_fpr(fpr: object) -> Array:
    if _is_tracer(fpr):
        return fpr
    arr = np.asarray(fpr, dtype=float)
    if arr.ndim > 1:
        raise ValueError(f"fpr must be a scalar or 1-D, got shape {arr.shape}")
    bad = ~(np.isfinite(arr) & (arr > 0) & (arr <= 1))
    if np.any(bad):
        raise ValueError(f"fpr must be in (0, 1], got {arr[bad].tolist()}")
    return arr


# ----------------------------------------------------------------------------- kernels


class _Sorted(NamedTuple):
    """Pooled scores sorted descending, with the tie-group structure (all shape (n,))."""

    scores: Array  # sorted descending
    order: Array  # permutation of the pooled index (IN first, then OUT)
    is_in: Array  # bool, label of each sorted score
    group_start: Array  # index of the first member of each score's tie group
    group_end: Array  # index of the last member of each score's tie group
    next_score: Array  # largest score strictly below the tie group, -inf if none


def _sort_pooled(s_in: Array, s_out: Array) -> _Sorted:
    """Sort once: O(n log n). Every statistic below is O(n) given this and sorted weights."""
    n_in = s_in.shape[0]
    pooled = jnp.concatenate([s_in, s_out])
    n = pooled.shape[0]
    idx = jnp.arange(n, dtype=jnp.int32)
    neg_sorted, order = jax.lax.sort((-pooled, idx), num_keys=1)
    s = -neg_sorted
    new = s[1:] != s[:-1]
    is_last = jnp.concatenate([new, jnp.ones((1,), bool)])
    is_first = jnp.concatenate([jnp.ones((1,), bool), new])
    group_end = jax.lax.cummin(jnp.where(is_last, idx, n), reverse=True)
    group_start = jax.lax.cummax(jnp.where(is_first, idx, 0))
    nxt = jnp.concatenate([s, jnp.full((1,), -jnp.inf, s.dtype)])[group_end + 1]
    return _Sorted(s, order, order < n_in, group_start, group_end, nxt)


def _roc_from_sorted(srt: _Sorted, w: Array) -> Roc:
    """ROC points (FPR, TPR) after each tie group, repeated for every member; O(n).

    ``w`` (n,) are the weights in sorted order (``w_pooled[srt.order]``).
    """
    tp = jnp.cumsum(jnp.where(srt.is_in, w, 0))
    fp = jnp.cumsum(jnp.where(srt.is_in, 0, w))
    tp, fp = tp[srt.group_end], fp[srt.group_end]
    zero = jnp.zeros((1,), w.dtype)
    tpr = jnp.concatenate([zero, tp / tp[-1]])
    fpr = jnp.concatenate([zero, fp / fp[-1]])
    thr = jnp.concatenate([srt.scores[:1], srt.next_score])
    return Roc(fpr, tpr, thr)


def _auc_from_sorted(srt: _Sorted, w: Array) -> Array:
    """Mann-Whitney AUC from sorted data and sorted weights ``w`` (n,); O(n).

    AUC = C / (C + D) with C = sum_j w_j [W_in(> s_j) + W_in(= s_j) / 2] and
    D = sum_j w_j [W_in(< s_j) + W_in(= s_j) / 2] over OUT scores j (C + D = W_in W_out), so
    perfectly separated classes give exactly 1 (and exactly 0) in any dtype, whatever the
    weights (a trapezoid over a float32 ROC does not).
    """
    w_in = jnp.where(srt.is_in, w, 0)
    c = jnp.concatenate([jnp.zeros((1,), w.dtype), jnp.cumsum(w_in)])  # IN weight before i
    above = c[srt.group_start]
    tied = c[srt.group_end + 1] - above
    below = c[-1] - above - tied  # IN weight strictly below the group
    w_out = jnp.where(srt.is_in, 0, w)
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


def _sorted_weights(srt: _Sorted, w_in: Array, w_out: Array) -> Array:
    return jnp.concatenate([w_in, w_out])[srt.order]


@jax.jit
def _roc_kernel(s_in, s_out, w_in, w_out) -> Roc:
    srt = _sort_pooled(s_in, s_out)
    return _roc_from_sorted(srt, _sorted_weights(srt, w_in, w_out))


@jax.jit
def _auc_kernel(s_in, s_out, w_in, w_out) -> Array:
    srt = _sort_pooled(s_in, s_out)
    return _auc_from_sorted(srt, _sorted_weights(srt, w_in, w_out))


@jax.jit
def _tpr_kernel(s_in, s_out, w_in, w_out, target) -> TprAtFpr:
    roc = _roc_kernel(s_in, s_out, w_in, w_out)
    return _tpr_at_fpr_from_roc(roc, target.astype(roc.fpr.dtype))


@jax.jit
def _percentile_kernel(s_in, s_out, q, frac) -> PercentileTable:
    # ``frac`` = q / 100 is computed by the caller (in float64 on the host when concrete):
    # jnp.percentile's own q / 100 rounds in float32 (75 -> 0.7499999), moving thresholds.
    pooled = _sort_floats(jnp.concatenate([s_in, s_out]))
    # jnp.quantile(pooled, frac, method="linear") on the sorted scores, without its float sort.
    pos = frac * (pooled.shape[0] - 1)
    low, high = jnp.floor(pos), jnp.ceil(pos)
    w_high = pos - low
    thr = pooled[low.astype(jnp.int32)] * (1 - w_high) + pooled[high.astype(jnp.int32)] * w_high
    tpr = jnp.mean(s_in[None, :] > thr[:, None], axis=1).astype(s_in.dtype)
    fpr = jnp.mean(s_out[None, :] > thr[:, None], axis=1).astype(s_in.dtype)
    return PercentileTable(q, thr, tpr, fpr, (tpr + 1 - fpr) / 2)


# ----------------------------------------------------------------------------- public metrics


def roc_curve(scores_in, scores_out, *, weights_in=None, weights_out=None) -> Roc:
    """Empirical ROC curve, IN = positive, rule ``score > threshold``.

    Args:
      scores_in: IN scores z, any shape (flattened), n_in values.
      scores_out: OUT scores z, any shape (flattened), n_out values.
      weights_in, weights_out: optional non-negative multiplicities, shaped like the scores.

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
    if not _is_tracer(percentiles):
        q = np.asarray(percentiles, dtype=float)
        if q.ndim != 1 or q.size == 0:
            raise ValueError(f"percentiles must be a non-empty 1-D sequence, got {percentiles!r}")
        bad = ~(np.isfinite(q) & (q > 0) & (q < 100))
        if np.any(bad):
            raise ValueError(f"percentiles must be in (0, 100), got {q[bad].tolist()}")
    dt = s_in.dtype
    if _is_tracer(percentiles):
        q = jnp.asarray(percentiles, dt)
        return _percentile_kernel(s_in, s_out, q, q / 100)
    q = np.asarray(percentiles, dtype=np.float64)
    return _percentile_kernel(s_in, s_out, jnp.asarray(q, dt), jnp.asarray(q / 100, dt))


@dataclasses.dataclass(frozen=True)
class TprAtFprStatistic:
    """Bootstrap statistic: TPR at a fixed target FPR (hashable, so jit caches by value)."""

    fpr: float

    def __post_init__(self):
        object.__setattr__(self, "fpr", check_probability("fpr", self.fpr, open_high=False))

    def __call__(self, scores_in, scores_out, *, weights_in=None, weights_out=None) -> Array:
        return tpr_at_fpr(
            scores_in, scores_out, self.fpr, weights_in=weights_in, weights_out=weights_out
        ).tpr

    def from_sorted(self, srt: _Sorted, w: Array) -> Array:
        """The statistic from pre-sorted scores and weights in sorted order (O(n))."""
        # Largest TPR over tie-group ends whose FPR <= target (= tpr_at_fpr(...).tpr), without
        # materialising the ROC: TP and FP are non-decreasing along the sorted order.
        tp = jnp.cumsum(jnp.where(srt.is_in, w, 0))[srt.group_end]
        fp = jnp.cumsum(jnp.where(srt.is_in, 0, w))[srt.group_end]
        ok = fp <= jnp.asarray(self.fpr, w.dtype) * fp[-1]
        return jnp.max(jnp.where(ok, tp, 0)) / tp[-1]


def _sorted_form(statistic) -> Callable | None:
    """``f(srt, w_sorted)`` computing ``statistic`` without a sort, or None if unknown."""
    if statistic is auc:
        return _auc_from_sorted
    return getattr(statistic, "from_sorted", None)


# ----------------------------------------------------------------------------- bootstrap

_CPU_CHUNK = 4


def _group_counts(key, groups: int, dtype) -> Array:
    """Multinomial(groups, uniform) counts: how often each group is drawn with replacement."""
    idx = jax.random.randint(key, (groups,), 0, groups)
    return jnp.bincount(idx, length=groups).astype(dtype)


def _order_keys(x: Array) -> Array:
    """Integers with the order of the floats ``x`` (ties stay ties): sorted with a cheap
    integer sort (XLA:CPU sorts int32 ~5x faster than float32)."""
    x = jnp.where(x == 0, jnp.zeros_like(x), x)  # -0.0 ties with +0.0
    it = jnp.int32 if x.dtype == jnp.float32 else jnp.int64
    return _flip_negative(jax.lax.bitcast_convert_type(x, it))


def _flip_negative(bits: Array) -> Array:
    """Flip the non-sign bits of negative integers: float bits <-> order keys (an involution)."""
    return jnp.where(bits < 0, bits ^ jnp.asarray(jnp.iinfo(bits.dtype).max, bits.dtype), bits)


# Largest tie group the group-pair path handles (larger ones fall back to the sorted path).
_MAX_TIE = 4


def _sort_floats(x: Array) -> Array:
    """``jnp.sort`` of a 1-D float32/float64 array through its integer keys (same values)."""
    if x.dtype not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        return jnp.sort(x)
    keys = jnp.sort(_order_keys(x))
    return jax.lax.bitcast_convert_type(_flip_negative(keys), x.dtype)


def _desc_positions(keys: Array) -> tuple[Array, Array, Array]:
    """A permutation of ``keys`` into descending order, without an argsort.

    One single-operand sort and a binary search give each key's rank; members of a tie group
    (up to ``_MAX_TIE``) then claim distinct slots of their group by scatter-max rounds.
    Returns (position of each key (n,) int32, the keys in descending order (n,), ok): ``ok``
    is False when a tie group is larger than ``_MAX_TIE`` (positions then collide).
    """
    n = keys.shape[0]
    srt = jnp.sort(keys)
    left = jnp.searchsorted(srt, keys, side="left").astype(jnp.int32)
    nxt = srt[jnp.minimum(left + 1, n - 1)]
    idx = jnp.arange(n, dtype=jnp.int32)
    pos, done = left, (left == n - 1) | (nxt != keys)  # alone in its tie group
    for r in range(1, _MAX_TIE):  # round r - 1 assigned slot left + r - 1 of every tie group
        want = jnp.where(done, left, left + r - 1)
        slot = jnp.full((n,), -1, jnp.int32).at[jnp.where(done, n, want)].max(idx, mode="drop")
        win = ~done & (slot[jnp.minimum(want, n - 1)] == idx)
        pos, done = jnp.where(win, want, pos), done | win
    pos = jnp.where(done, pos, left + _MAX_TIE - 1)  # the last member of a group of _MAX_TIE
    small = jnp.all(srt[_MAX_TIE:] != srt[:-_MAX_TIE]) if n > _MAX_TIE else jnp.asarray(True)
    return (n - 1) - pos, srt[::-1], small


def _rev_excl_cumsum(x: Array, step: int = 32) -> Array:
    """y[i] = sum_{j > i} x[j] along axis 0 of (n, g), as matmuls (XLA:CPU cumsum is slow)."""
    n, g = x.shape
    n1 = -(-n // step)
    x3 = jnp.concatenate([x, jnp.zeros((n1 * step - n, g), x.dtype)]).reshape(n1, step, g)
    later = jnp.triu(jnp.ones((step, step), x.dtype), 1)  # later[i, j] = 1 if j > i
    within = jnp.einsum("ij,ajg->aig", later, x3, precision=jax.lax.Precision.HIGHEST)
    tot = x3.sum(axis=1)  # (n1, g)
    after = jnp.cumsum(tot[::-1], axis=0)[::-1] - tot  # later superblocks
    return (within + after[:, None, :]).reshape(n1 * step, g)[:n]


def _pair_counts(pos, is_in, grp, key_desc, g_in: int, g_out: int, dt, block: int = 32) -> Array:
    """K[g, h] = sum over (i in IN group g, j in OUT group h) of 1[s_i > s_j] + 1[s_i = s_j]/2.

    ``pos`` (n,) is a permutation into descending order (ties in any order, tie groups of at
    most ``_MAX_TIE``), ``key_desc`` (n,) the sorted keys. Blocked over positions: pairs in
    different blocks come from block counts (a matmul against reverse cumulative OUT counts),
    pairs inside a block from one scatter-add; then tied IN/OUT pairs, counted 1 or 0 by
    position, are moved to 1/2. O(n G_in G_out / block + n block), no per-pair work.
    """
    n = pos.shape[0]
    nb = -(-n // block)
    size = nb * block
    gi = jnp.full((size,), g_in, jnp.int32).at[pos].set(jnp.where(is_in, grp, g_in))
    ho = jnp.full((size,), g_out, jnp.int32).at[pos].set(jnp.where(is_in, g_out, grp))
    g2, h2 = gi.reshape(nb, block), ho.reshape(nb, block)
    blk = jnp.arange(nb, dtype=jnp.int32)[:, None]
    a = jnp.zeros((nb, g_in + 1), dt).at[blk, g2].add(1)[:, :g_in]
    o = jnp.zeros((nb, g_out + 1), dt).at[blk, h2].add(1)[:, :g_out]
    k = jnp.matmul(a.T, _rev_excl_cumsum(o), precision=jax.lax.Precision.HIGHEST)
    first, second = np.triu_indices(block, 1)  # the block(block - 1)/2 ordered slot pairs
    idx = (g2[:, first] * (g_out + 1) + h2[:, second]).ravel()  # IN earlier, OUT later
    w = jnp.zeros(((g_in + 1) * (g_out + 1),), dt).at[idx].add(1)
    idx, val = [], []
    for d in range(1, _MAX_TIE):  # tied pairs d positions apart
        tie = key_desc[:-d] == key_desc[d:]
        first_in = gi[: n - d] < g_in
        second_in = gi[d:n] < g_in
        # IN then OUT was counted 1 (-1/2); OUT then IN was counted 0 (+1/2).
        fix = jnp.where(tie & first_in & ~second_in, -0.5, 0.0)
        fix = jnp.where(tie & ~first_in & second_in, 0.5, fix)
        row = jnp.where(first_in, gi[: n - d], gi[d:n])
        col = jnp.where(first_in, ho[d:n], ho[: n - d])
        idx.append(row * (g_out + 1) + col)
        val.append(fix.astype(dt))
    if idx:
        w = w.at[jnp.concatenate(idx)].add(jnp.concatenate(val))
    return k + w.reshape(g_in + 1, g_out + 1)[:g_in, :g_out]


# Group-pair path of the bootstrap: used when G_in * G_out is at most _PAIR_LIMIT (its cost is
# O(n G_in G_out / 32) once, against O(n) per replicate for the sorted path) and there are at
# most _PAIR_MAX_SCORES pooled scores (its within-block pairs take ~16 int32 per score).
_PAIR_LIMIT = 1 << 18
_PAIR_MAX_SCORES = 1 << 21


def _pair_path(s_in, s_out, statistics, c_in, c_out):
    """All replicates at once from group-pair counts (exact, ties counted 1/2).

    ``c_in`` (R, G_in), ``c_out`` (R, G_out): group counts per replicate. The AUC of a
    replicate is c_in^T K c_out / (c_in^T K c_out + c_in^T (P - K) c_out), K[g, h] = pairs
    (IN of g above OUT of h, ties 1/2), P = P_in P_out; the TPR at ``fpr`` reads the first top
    OUT score whose weighted count passes fpr * W_out, from a window of the top OUT scores.
    Returns (values (R, S), ok): ``ok`` is False when a tie group is larger than ``_MAX_TIE``
    or a window was too short, and the caller then uses the sorted path.
    """
    (g_in, p_in), (g_out, p_out) = s_in.shape, s_out.shape
    dt = s_in.dtype
    n_in, n_out = g_in * p_in, g_out * p_out
    hi = jax.lax.Precision.HIGHEST
    key_in, key_out = _order_keys(s_in), _order_keys(s_out)
    pos, key_desc, ok = _desc_positions(jnp.concatenate([key_in.ravel(), key_out.ravel()]))
    i = jnp.arange(n_in + n_out, dtype=jnp.int32)
    is_in = i < n_in
    grp = jnp.where(is_in, i // p_in, (i - n_in) // p_out)
    cols, pairs, window = [], None, None
    for st in statistics:
        if st is auc:
            if pairs is None:
                pairs = _pair_counts(pos, is_in, grp, key_desc, g_in, g_out, dt)
            conc = jnp.sum(jnp.matmul(c_in, pairs, precision=hi) * c_out, axis=1)
            disc = jnp.sum(jnp.matmul(c_in, p_in * p_out - pairs, precision=hi) * c_out, axis=1)
            cols.append(conc / (conc + disc))
            continue
        m = min(n_out, math.ceil(4 * st.fpr * n_out) + 4 * p_out + 64)
        if window is None or window[0] < m:
            flat = key_out.ravel()
            # Rank of each OUT score among OUT scores: its pooled position minus the IN
            # scores placed before it.
            in_before = jnp.cumsum(jnp.zeros((n_in + n_out,), jnp.int32).at[pos].set(is_in))
            rank = pos[n_in:] - in_before[pos[n_in:]]
            top = jnp.zeros((m,), jnp.int32).at[rank].set(i[:n_out], mode="drop")
            rows = jnp.sort(key_in, axis=1)  # (G_in, P_in) ascending
            search = jax.vmap(functools.partial(jnp.searchsorted, side="right"), (0, None))
            above = p_in - search(rows, flat[top])
            window = (m, top // p_out, above.T.astype(dt))  # (m,), (m, G_in)
        _, h_top, above = window
        fp = jnp.cumsum(c_out[:, h_top[:m]], axis=1)  # weighted FP after each top OUT score
        exceed = fp > jnp.asarray(st.fpr, dt) * jnp.asarray(n_out, dt)
        ok = ok & jnp.all(jnp.any(exceed, axis=1))
        first = jnp.argmax(exceed, axis=1)  # the first OUT score the rule must leave out
        tp = jnp.sum(c_in * above[first], axis=1)  # weighted IN strictly above it
        cols.append(tp / (jnp.sum(c_in, axis=1) * p_in))  # = W_in, as the sorted path
    return jnp.stack(cols, axis=1).astype(dt), ok


def _has_pair_form(statistic) -> bool:
    return statistic is auc or isinstance(statistic, TprAtFprStatistic)


def _bootstrap_impl(key, s_in, s_out, statistics, *, num_resamples, level, paired, chunk):
    """Traceable core of :func:`grouped_bootstrap` for a tuple of statistics.

    Row 0 of the evaluated counts is all ones (the estimate), rows 1..R the replicates' group
    counts (multinomial, drawn per replicate key). Three paths, the same numbers:
      * group pairs (:func:`_pair_path`) for :func:`auc` / :class:`TprAtFprStatistic` when
        G_in G_out <= ``_PAIR_LIMIT`` and scores are float32/64: every replicate from one
        (G_in, G_out) pair-count matrix; it falls back (``lax.cond``) to the sorted path for
        tie groups larger than ``_MAX_TIE`` or a too-short TPR window;
      * sorted: ONE sort of the pooled scores, then per replicate a gather of the counts into
        sorted order and each statistic in O(n);
      * generic callables receive the scores and expanded weights.
    Returns a tuple of :class:`Interval`, one per statistic.
    """
    (g_in, p_in), (g_out, p_out) = s_in.shape, s_out.shape
    dt = s_in.dtype
    forms = tuple(_sorted_form(st) for st in statistics)

    def make_evaluate():  # traced inside the branch that uses it (lax.cond): no sort otherwise
        if not all(f is not None for f in forms):

            def evaluate(c_in, c_out):
                w_in = jnp.broadcast_to(c_in[:, None], s_in.shape)
                w_out = jnp.broadcast_to(c_out[:, None], s_out.shape)
                return jnp.stack(
                    [
                        st(s_in, s_out, weights_in=w_in, weights_out=w_out).astype(dt)
                        for st in statistics
                    ]
                )

            return evaluate
        srt = _sort_pooled(s_in.ravel(), s_out.ravel())
        group = jnp.concatenate(
            [
                jnp.repeat(jnp.arange(g_in, dtype=jnp.int32), p_in),
                g_in + jnp.repeat(jnp.arange(g_out, dtype=jnp.int32), p_out),
            ]
        )[srt.order]

        def evaluate(c_in, c_out):
            w = jnp.concatenate([c_in, c_out])[group]
            return jnp.stack([f(srt, w).astype(dt) for f in forms])

        return evaluate

    def draw(k):
        k_in, k_out = jax.random.split(k)
        c_in = _group_counts(k_in, g_in, dt)
        return c_in, (c_in if paired else _group_counts(k_out, g_out, dt))

    c_in, c_out = jax.vmap(draw)(jax.random.split(key, num_resamples))
    c_in = jnp.concatenate([jnp.ones((1, g_in), dt), c_in])  # row 0: the original data
    c_out = jnp.concatenate([jnp.ones((1, g_out), dt), c_out])

    def sorted_path(c_in, c_out):
        evaluate = make_evaluate()
        return jax.lax.map(lambda c: evaluate(*c), (c_in, c_out), batch_size=chunk)

    use_pairs = (
        all(_has_pair_form(st) for st in statistics)
        and dt in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64))
        and g_in * g_out <= _PAIR_LIMIT
        and g_in * p_in + g_out * p_out <= _PAIR_MAX_SCORES
    )
    if use_pairs:
        vals, ok = _pair_path(s_in, s_out, statistics, c_in, c_out)
        vals = jax.lax.cond(
            ok, lambda v, a, b: v, lambda v, a, b: sorted_path(a, b), vals, c_in, c_out
        )
    else:
        vals = sorted_path(c_in, c_out)
    estimate, reps = vals[0], vals[1:]
    alpha = (1.0 - level) / 2.0
    low, high = jnp.quantile(reps, jnp.asarray([alpha, 1.0 - alpha], dt), axis=0, method="linear")
    std = jnp.std(reps, axis=0, ddof=1)
    return tuple(Interval(estimate[i], low[i], high[i], std[i]) for i in range(len(statistics)))


_bootstrap_kernel = jax.jit(
    _bootstrap_impl, static_argnames=("statistics", "num_resamples", "level", "paired", "chunk")
)


def grouped_bootstrap(
    key: Array,
    statistic,
    scores_in,
    scores_out,
    *,
    num_resamples: int = 200,
    level: float = 0.95,
    paired: bool,
    chunk: int | None = None,
):
    """Percentile interval from resampling whole groups (games or tasks) with replacement.

    Each replicate draws multinomial counts per group and weights every score of a group by
    its count (weights are multiplicities). For :func:`auc` and :class:`TprAtFprStatistic`
    the pooled scores are sorted once and each replicate costs O(n); any other callable
    ``statistic(scores_in, scores_out, weights_in=..., weights_out=...)`` is evaluated as is.
    Pass a tuple of statistics to bootstrap them on the same replicates (one sort, one set
    of counts). Replicates are vmapped in chunks of ``chunk`` (``jax.lax.map``) in one jit.

    Args:
      key: typed key (``jax.random.key``).
      statistic: :func:`auc`, ``TprAtFprStatistic(fpr)``, another scalar function of scores
        and weight keywords, or a tuple of these. Pass the same (hashable) objects to avoid
        recompiling.
      scores_in: (G_in, P_in) IN scores, one row per group.
      scores_out: (G_out, P_out) OUT scores, one row per group.
      paired: True resamples games (the same group index for IN and OUT; needs G_in = G_out);
        False resamples IN groups and OUT groups independently (tasks).
      chunk: replicates per vmapped chunk; default keeps a chunk's per-score arrays ~64 MiB,
        and at most 4 on CPU (fastest there).

    Returns:
      ``Interval(estimate, low, high, std)``, or a tuple of them if ``statistic`` is a tuple.
    """
    if not (hasattr(key, "dtype") and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)):
        raise ValueError(f"key must be a typed key from jax.random.key, got {key!r}")
    if key.shape != ():
        raise ValueError(f"key must be a single key, got shape {key.shape}")
    many = isinstance(statistic, tuple)
    statistics = statistic if many else (statistic,)
    if not statistics or not all(callable(st) for st in statistics):
        raise ValueError(f"statistic must be callable or a tuple of callables, got {statistic!r}")
    num_resamples = check_int("num_resamples", num_resamples, low=2)
    level = check_probability("level", level)
    if not isinstance(paired, bool):
        raise ValueError(f"paired must be a bool, got {paired!r}")
    s_in = _check_scores("scores_in", scores_in)
    s_out = _check_scores("scores_out", scores_out)
    for name, s in (("scores_in", s_in), ("scores_out", s_out)):
        if s.ndim != 2:
            raise ValueError(f"{name} must have shape (groups, per_group), got {s.shape}")
    if paired and s_in.shape[0] != s_out.shape[0]:
        raise ValueError(
            "paired=True needs equal group counts, got "
            f"scores_in {s_in.shape} and scores_out {s_out.shape}"
        )
    dt = _float_dtype(s_in, s_out)
    s_in, s_out = s_in.astype(dt), s_out.astype(dt)
    if chunk is None:
        n = s_in.size + s_out.size
        chunk = max(1, min(num_resamples, (64 * 2**20) // (8 * n * dt.itemsize)))
        if jax.default_backend() == "cpu":
            # Measured on 2 CPU cores (65k and 1M scores): 4 replicates per step is fastest,
            # 32 is 1.6x and 200 2.4x slower (memory traffic, no extra parallelism).
            chunk = min(chunk, _CPU_CHUNK)
    chunk = check_int("chunk", chunk, low=1)
    out = _bootstrap_kernel(
        key,
        s_in,
        s_out,
        statistics=statistics,
        num_resamples=num_resamples,
        level=level,
        paired=paired,
        chunk=chunk,
    )
    return out if many else out[0]
