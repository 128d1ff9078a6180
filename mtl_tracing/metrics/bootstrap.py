"""Grouped bootstrap of ROC statistics: percentile intervals from resampling whole groups.

Groups (games of the Gaussian game, tasks of an attack) are the independent units; scores in a
group are correlated, so resampling scores would understate the spread (STYLE: "resample by
task"). A bootstrap is two steps:

1. the integer group counts of every replicate, drawn from the key with ``jax.random``
   (:func:`_draw_counts`; row 0 all ones, the original data): the same counts whatever the
   path below, so the paths differ only in how they compute the statistics;
2. the statistics of every row of counts, by one of three paths (tested equal on the same
   counts, to the dtype's rounding):

   * **sorted** (the reference): the pooled scores sorted once (:func:`roc.sort_pooled`), then
     per replicate a gather of the group counts into sorted order and each statistic in O(n);
     any other callable gets (scores, integer weights) per replicate (the generic form);
   * **group pairs** (:func:`_fast.pair_path`; :func:`auc` and :class:`TprAtFprStatistic`):
     every replicate from one (G_in, G_out) pair-count matrix; exact when no tie group is
     larger than ``_fast.MAX_TIE`` and the TPR window is long enough. It pays where replicates
     dominate: on 2 CPU cores, 200 replicates of 200 x 64 paired scores take 0.010 s warm
     against 0.049 s sorted (5x), 0.56 s against 1.23 s at 1000 x 256 (2.2x); its compile is
     ~0.5 s longer. The backend rule is in :func:`_choose_path`;
   * **host** (:mod:`._host`; AUC and TPR): small concrete inputs ((R + 1) n <=
     ``_host.HOST_MAX_WORK``, e.g. the tiny ``game``) in NumPy, where compiling the statistics
     program (~1-2 s on 2 CPU cores) would cost more than computing them.

The path is chosen on the host when the inputs are concrete (shapes, dtype and the tie
structure are known there): one statistics program is compiled, without a fallback branch. When
a window turns out too short (rare: a replicate that puts little weight on the top OUT groups),
the sorted program runs after. Inside ``jit``/``vmap`` (the sweep's statistics program) the
choice is traced: the group-pair path with a ``lax.cond`` fallback to the sorted path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mtl_tracing._validate import check_int, check_key, check_probability
from mtl_tracing.metrics import _host
from mtl_tracing.metrics._fast import (
    count_dtype,
    pair_path,
    pair_path_applies,
    pair_path_bytes,
    ties_small,
)
from mtl_tracing.metrics.roc import (
    auc,
    auc_from_sorted,
    check_count_range,
    check_scores,
    float_dtype,
    is_tracer,
    sort_pooled,
    tpr_at_fpr,
    tpr_from_sorted,
)

__all__ = [
    "Interval",
    "TprAtFprStatistic",
    "grouped_bootstrap",
    "bootstrap_memory_bytes",
    "paired_group_counts",
    "bootstrap_intervals",
]

Array = jax.Array
_CPU_CHUNK = 4  # replicates per step on CPU (see grouped_bootstrap)


class Interval(NamedTuple):
    """Grouped-bootstrap percentile interval for a scalar statistic."""

    estimate: Array  # statistic on the original data
    low: Array  # (1 - level) / 2 quantile of the replicates
    high: Array  # (1 + level) / 2 quantile of the replicates
    std: Array  # bootstrap standard error (std of the replicates, ddof=1)


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

    def from_sorted(self, srt, w: Array) -> Array:
        """The statistic from pre-sorted scores and weights in sorted order (O(n))."""
        return tpr_from_sorted(srt, w, self.fpr)


def _sorted_form(statistic) -> Callable | None:
    """``f(srt, w_sorted)`` computing ``statistic`` without a sort, or None if unknown."""
    if statistic is auc:
        return auc_from_sorted
    return getattr(statistic, "from_sorted", None)


def _pair_fprs(statistics) -> tuple | None:
    """The group-pair form of ``statistics`` (None = AUC, float = TPR at that FPR), or None."""
    out = []
    for st in statistics:
        if st is auc:
            out.append(None)
        elif isinstance(st, TprAtFprStatistic):
            out.append(st.fpr)
        else:
            return None
    return tuple(out)


def _draw_counts(key, g_in: int, g_out: int, num_resamples: int, paired: bool):
    """(R + 1, G_in) and (R + 1, G_out) integer group counts (``count_dtype``): row 0 all ones
    (the original data), rows 1..R multinomial counts of G draws with replacement, replicate r
    from ``split(key, R)[r]`` (paired: the IN counts are the OUT counts)."""
    ct = count_dtype()

    def draw(k):
        k_in, k_out = jax.random.split(k)
        c_in = jnp.bincount(jax.random.randint(k_in, (g_in,), 0, g_in), length=g_in)
        if paired:
            return c_in.astype(ct), c_in.astype(ct)
        c_out = jnp.bincount(jax.random.randint(k_out, (g_out,), 0, g_out), length=g_out)
        return c_in.astype(ct), c_out.astype(ct)

    c_in, c_out = jax.vmap(draw)(jax.random.split(key, num_resamples))
    c_in = jnp.concatenate([jnp.ones((1, g_in), ct), c_in])
    c_out = jnp.concatenate([jnp.ones((1, g_out), ct), c_out])
    return c_in, c_out


# One small program per (G_in, G_out, R, paired): the counts of every path.
_counts_program = jax.jit(
    _draw_counts, static_argnames=("g_in", "g_out", "num_resamples", "paired")
)


def _intervals(counts, s_in, s_out, statistics, *, level, chunk, path):
    """Intervals of ``statistics`` from integer group ``counts`` = (c_in (R + 1, G_in), c_out).

    Row 0 of the counts is all ones (the estimate), rows 1..R the replicates' group counts.
    ``path``: "sorted" (sorted or generic), "pairs" (group pairs only; ``ok`` says whether its
    numbers hold) or "auto" (group pairs with a ``lax.cond`` fallback to the sorted path).
    Returns (tuple of :class:`Interval`, ok).
    """
    (g_in, p_in), (g_out, p_out) = s_in.shape, s_out.shape
    dt = s_in.dtype
    forms = tuple(_sorted_form(st) for st in statistics)

    def make_evaluate():  # traced only in the branch that uses it: no sort otherwise
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
        srt = sort_pooled(s_in.ravel(), s_out.ravel())
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

    c_in, c_out = counts

    def sorted_path(c_in, c_out):
        evaluate = make_evaluate()
        return jax.lax.map(lambda c: evaluate(*c), (c_in, c_out), batch_size=chunk)

    ok = jnp.asarray(True)
    if path == "sorted":
        vals = sorted_path(c_in, c_out)
    else:
        vals, ok = pair_path(s_in, s_out, _pair_fprs(statistics), c_in, c_out)
        if path == "auto":
            vals = jax.lax.cond(
                ok, lambda v, a, b: v, lambda v, a, b: sorted_path(a, b), vals, c_in, c_out
            )
            ok = jnp.asarray(True)
    return _interval_tuple(vals, level, len(statistics)), ok


def _interval_tuple(vals, level: float, count: int) -> tuple:
    """One :class:`Interval` per statistic from (R + 1, S) values (row 0: the estimate)."""
    dt = vals.dtype
    estimate, reps = vals[0], vals[1:]
    alpha = (1.0 - level) / 2.0
    low, high = jnp.quantile(reps, jnp.asarray([alpha, 1.0 - alpha], dt), axis=0, method="linear")
    std = jnp.std(reps, axis=0, ddof=1)
    return tuple(Interval(estimate[i], low[i], high[i], std[i]) for i in range(count))


_intervals_program = jax.jit(_intervals, static_argnames=("statistics", "level", "chunk", "path"))


def paired_group_counts(key, groups: int, num_resamples: int) -> Array:
    """Unchecked kernel: the (R + 1, G) integer group counts a paired
    :func:`grouped_bootstrap` with ``key`` uses (row 0 all ones). Traceable; lets a caller
    draw them in another program."""
    return _draw_counts(key, groups, groups, num_resamples, True)[0]


def bootstrap_intervals(counts, s_in, s_out, statistics, *, level, chunk, path):
    """Unchecked kernel: :func:`grouped_bootstrap`'s intervals from given integer group
    ``counts`` (c_in (R + 1, G_in), c_out), e.g. from :func:`paired_group_counts`; traceable,
    no validation.

    ``path``: "pairs" (group pairs only), "auto" (group pairs with a ``lax.cond`` fallback) or
    "sorted"; "pairs" and "auto" become "sorted" where the group-pair path does not apply to
    these shapes or statistics, as :func:`grouped_bootstrap` chooses. Returns (tuple of
    :class:`Interval`, ok): ``ok`` False when the "pairs" numbers do not hold.
    """
    fprs = _pair_fprs(statistics)
    if fprs is None or not pair_path_applies(s_in.shape, s_out.shape, fprs, s_in.dtype):
        path = "sorted"
    return _intervals(counts, s_in, s_out, statistics, level=level, chunk=chunk, path=path)


# Backends where the group-pair path is the default when it applies (module docstring: it pays
# on CPU, measured). Elsewhere the sorted path, whose per-replicate work is a gather and two
# cumulative sums that a GPU runs in parallel; benchmarks/bench_bootstrap.py measures both on
# the machine at hand.
_PAIR_BACKENDS = ("cpu",)


def _choose_path(key, s_in, s_out, statistics, num_resamples: int = 200, host=None) -> str:
    """The statistics path, chosen on the host when the inputs are concrete.

    "host" (NumPy, :mod:`._host`) for concrete AUC/TPR inputs with (R + 1) n at most
    ``_host.HOST_MAX_WORK``; else "pairs" or "sorted" (one compiled program), or "auto"
    (traced inputs: group pairs with a ``lax.cond`` fallback).
    """
    fprs = _pair_fprs(statistics)
    concrete = not (is_tracer(key) or is_tracer(s_in) or is_tracer(s_out))
    if host:
        if not concrete or fprs is None:
            raise ValueError(
                "host=True needs concrete inputs (not inside jit/vmap) and statistics among "
                f"auc and TprAtFprStatistic, got {statistics!r}"
            )
        return "host"
    work = (num_resamples + 1) * (s_in.size + s_out.size)
    if host is None and concrete and fprs is not None and work <= _host.HOST_MAX_WORK:
        return "host"
    if (
        fprs is None
        or jax.default_backend() not in _PAIR_BACKENDS
        or not pair_path_applies(s_in.shape, s_out.shape, fprs, s_in.dtype)
    ):
        return "sorted"
    if not concrete:
        return "auto"
    return "pairs" if ties_small(np.asarray(s_in), np.asarray(s_out)) else "sorted"


def _host_intervals(counts, s_in, s_out, statistics, level: float) -> tuple:
    """The host path: NumPy statistics of the drawn counts."""
    c_in, c_out = (np.asarray(c) for c in counts)
    vals = _host.bootstrap_replicates(
        np.asarray(s_in), np.asarray(s_out), _pair_fprs(statistics), c_in, c_out
    )
    parts = _host.interval_arrays(vals, level)
    return tuple(Interval(*(jnp.asarray(a[i]) for a in parts)) for i in range(len(statistics)))


def _default_chunk(n: int, num_resamples: int, dtype) -> int:
    chunk = max(1, min(num_resamples, (64 * 2**20) // (8 * n * jnp.dtype(dtype).itemsize)))
    if jax.default_backend() == "cpu":
        # Measured on 2 CPU cores (65k and 1M scores): 4 replicates per step is fastest,
        # 32 is 1.6x and 200 2.4x slower (memory traffic, no extra parallelism).
        chunk = min(chunk, _CPU_CHUNK)
    return chunk


def _statistics_tuple(statistic) -> tuple:
    statistics = statistic if isinstance(statistic, tuple) else (statistic,)
    if not statistics or not all(callable(st) for st in statistics):
        raise ValueError(f"statistic must be callable or a tuple of callables, got {statistic!r}")
    return statistics


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
    host: bool | None = None,
):
    """Percentile interval from resampling whole groups (games or tasks) with replacement.

    Each replicate draws multinomial counts per group and weights every score of a group by
    its count (weights are multiplicities). For :func:`auc` and :class:`TprAtFprStatistic`
    no replicate re-sorts (module docstring: the group-pair and sorted paths); any other
    callable ``statistic(scores_in, scores_out, weights_in=..., weights_out=...)`` is
    evaluated as is. Pass a tuple of statistics to bootstrap them on the same replicates (one
    sort, one set of counts). Replicates are evaluated in chunks of ``chunk``
    (``jax.lax.map``) in one jit. Traceable (then the path choice is traced too); do not
    ``vmap`` it where speed matters: under vmap the ``lax.cond`` fallback becomes a select
    and both paths run.

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
      host: the NumPy host path (:mod:`._host`) for AUC/TPR statistics: ``None`` (default)
        when (R + 1) n <= ``_host.HOST_MAX_WORK`` and the inputs are concrete (no compile:
        best for one or a few calls, e.g. a command); ``False`` always compiles (best when
        the same shapes are bootstrapped many times, e.g. a loop over sweep cells: ~0.1 s
        per call on the host against ~0.01 s warm compiled at n = 25,600, R = 100);
        ``True`` requires the host path (ValueError where it cannot apply).

    Returns:
      ``Interval(estimate, low, high, std)``, or a tuple of them if ``statistic`` is a tuple.
    """
    check_key("key", key)
    statistics = _statistics_tuple(statistic)
    num_resamples = check_int("num_resamples", num_resamples, low=2)
    level = check_probability("level", level)
    if not isinstance(paired, bool):
        raise ValueError(f"paired must be a bool, got {paired!r}")
    s_in = check_scores("scores_in", scores_in)
    s_out = check_scores("scores_out", scores_out)
    for name, s in (("scores_in", s_in), ("scores_out", s_out)):
        if s.ndim != 2:
            raise ValueError(f"{name} must have shape (groups, per_group), got {s.shape}")
    if paired and s_in.shape[0] != s_out.shape[0]:
        raise ValueError(
            "paired=True needs equal group counts, got "
            f"scores_in {s_in.shape} and scores_out {s_out.shape}"
        )
    dt = float_dtype(s_in, s_out)
    s_in, s_out = s_in.astype(dt), s_out.astype(dt)
    check_count_range(s_in.size + s_out.size, "the number of scores")
    if chunk is None:
        chunk = _default_chunk(s_in.size + s_out.size, num_resamples, dt)
    chunk = check_int("chunk", chunk, low=1)
    if host not in (None, True, False):
        raise ValueError(f"host must be None, True or False, got {host!r}")
    path = _choose_path(key, s_in, s_out, statistics, num_resamples, host=host)
    (g_in, _), (g_out, _) = s_in.shape, s_out.shape
    draw = dict(g_in=g_in, g_out=g_out, num_resamples=num_resamples, paired=paired)
    kw = dict(statistics=statistics, level=level, chunk=chunk)
    if path == "auto":  # traced: one program, counts drawn in it
        out, _ = _intervals(_draw_counts(key, **draw), s_in, s_out, path=path, **kw)
    else:
        counts = _counts_program(key, **draw)
        if path == "host":
            out = _host_intervals(counts, s_in, s_out, statistics, level)
        else:
            out, ok = _intervals_program(counts, s_in, s_out, path=path, **kw)
            if path == "pairs" and not bool(ok):  # a TPR window was too short: the reference
                out, _ = _intervals_program(counts, s_in, s_out, path="sorted", **kw)
    return out if isinstance(statistic, tuple) else out[0]


def bootstrap_memory_bytes(
    statistic,
    shape_in: tuple[int, int],
    shape_out: tuple[int, int],
    *,
    num_resamples: int = 200,
    chunk: int | None = None,
    dtype=jnp.float32,
) -> int:
    """Working memory of :func:`grouped_bootstrap` in bytes: an upper estimate for planning.

    With n = G_in P_in + G_out P_out pooled scores and words of max(itemsize, 4) bytes: the
    sorted path keeps ~8 n words (sorted scores, permutation, tie groups, group index) plus
    ~4 n words per replicate of a chunk; the group-pair path, when it applies, adds 16 int32
    per score (within-block pairs), the (G_in, G_out) pair matrices and a window of the top
    OUT scores for (G_in + R + 1) rows. Both are counted, as a traced call compiles both.

    Args:
      statistic: as for :func:`grouped_bootstrap` (a statistic or a tuple of them).
      shape_in, shape_out: (G_in, P_in) and (G_out, P_out), the score shapes.
      num_resamples: R.
      chunk: replicates per step; ``None`` is the default of :func:`grouped_bootstrap`.
      dtype: score dtype.
    """
    statistics = _statistics_tuple(statistic)
    g_in, p_in = (check_int("shape_in", v, low=1) for v in shape_in)
    g_out, p_out = (check_int("shape_out", v, low=1) for v in shape_out)
    num_resamples = check_int("num_resamples", num_resamples, low=2)
    dt = jnp.dtype(dtype)
    n = g_in * p_in + g_out * p_out
    if chunk is None:
        chunk = _default_chunk(n, num_resamples, dt)
    chunk = check_int("chunk", chunk, low=1)
    word = max(dt.itemsize, 4)
    total = 8 * n * word + min(chunk, num_resamples) * 4 * n * word
    total += 2 * (num_resamples + 1) * (g_in + g_out) * 8  # integer group counts
    fprs = _pair_fprs(statistics)
    if fprs is not None and pair_path_applies((g_in, p_in), (g_out, p_out), fprs, dt):
        total += pair_path_bytes((g_in, p_in), (g_out, p_out), fprs, num_resamples, dt)
    return int(total)
