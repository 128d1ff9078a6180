"""Host (NumPy) path of the grouped bootstrap for small inputs: no program to compile.

For a few thousand scores, compiling the bootstrap's statistics program (about 1 s on 2 CPU
cores) costs far more than computing it. :func:`bootstrap_replicates` evaluates the same
replicates as the sorted path of :mod:`mtl_tracing.metrics.bootstrap` in NumPy, from the same
integer group counts: one stable sort of the pooled scores, then per replicate the
Mann-Whitney AUC (:func:`~mtl_tracing.metrics.roc.auc_from_sorted`) and the TPR at fixed FPRs
(:func:`~mtl_tracing.metrics.roc.tpr_from_sorted`) as integer cumulative sums over the sorted
order, vectorised over a chunk of replicates. The numbers agree with the device path to the
dtype's rounding (the order of the final sums differs; tested in float32 and float64).
Unchecked: callers validate.
"""

from __future__ import annotations

import numpy as np

# Per-replicate work (R + 1) * n at most this: the host path (measured on 2 CPU cores: at
# 2^23 the host takes ~0.2 s against ~1 s to compile the device program).
HOST_MAX_WORK = 1 << 23
_CHUNK_ELEMENTS = 1 << 21  # replicate rows x scores per NumPy chunk (~8-16 MiB per temporary)


class _Sorted:
    """Pooled scores sorted descending with their tie groups (NumPy twin of ``SortedScores``)."""

    def __init__(self, s_in: np.ndarray, s_out: np.ndarray):
        n_in = s_in.size
        pooled = np.concatenate([s_in.ravel(), s_out.ravel()])
        n = pooled.size
        self.order = np.argsort(-pooled, kind="stable")
        s = pooled[self.order]
        self.is_in = self.order < n_in
        idx = np.arange(n)
        new = s[1:] != s[:-1]
        self.ties = not bool(np.all(new))
        is_last = np.concatenate([new, [True]])
        is_first = np.concatenate([[True], new])
        self.group_end = np.minimum.accumulate(np.where(is_last, idx, n)[::-1])[::-1]
        self.group_start = np.maximum.accumulate(np.where(is_first, idx, 0))
        # For the AUC: IN scores in sorted order, and per OUT score the number of IN scores
        # before its tie group (above) and up to its tie group's end (above + tied).
        self.in_pos = np.flatnonzero(self.is_in)
        self.out_pos = np.flatnonzero(~self.is_in)
        in_through = np.cumsum(self.is_in)  # IN scores at positions <= p
        self.in_above = (in_through - self.is_in)[self.group_start[self.out_pos]]
        self.in_through_tie = in_through[self.group_end[self.out_pos]]


def _auc_rows(srt: _Sorted, w_in: np.ndarray, w_out: np.ndarray) -> np.ndarray:
    """AUC of each row of the IN and OUT weights in sorted order, (rows, n_in) and
    (rows, n_out): C / (C + D) as in ``auc_from_sorted``.

    C = sum over OUT scores of w_out x (IN weight above + half the IN weight tied) and
    C + D = W_in W_out. With integer counts every term and sum is exact (float64 sums of
    values below 2^24), so this is the device path's C / (C + D) to the last bit.
    """
    c = np.zeros((w_in.shape[0], w_in.shape[1] + 1), np.int64)  # IN weight of the first i
    np.cumsum(w_in, axis=1, out=c[:, 1:])
    above = c[:, srt.in_above].astype(np.float64)
    if srt.ties:
        credit = above + (c[:, srt.in_through_tie] - c[:, srt.in_above]) * 0.5
    else:
        credit = above
    # Integer counts in float64 are exact (< 2^53); NumPy's row sums of a 2-D block are not
    # pairwise, so accumulate in float64 (like the device path's tree reduction, to rounding).
    conc = np.sum(w_out * credit, axis=1, dtype=np.float64)
    total = c[:, -1].astype(np.float64) * np.sum(w_out, axis=1, dtype=np.float64)
    return conc / total


def _tpr_rows(srt: _Sorted, w: np.ndarray, fpr: float, dt) -> np.ndarray:
    """TPR at FPR <= ``fpr`` of each row from integer weights, as ``tpr_from_sorted`` (the
    FPR comparison in the scores' dtype ``dt``; exactly 1 when every IN score is kept)."""
    tp = np.cumsum(np.where(srt.is_in, w, 0), axis=1)[:, srt.group_end]
    fp = np.cumsum(np.where(srt.is_in, 0, w), axis=1)[:, srt.group_end]
    ok = fp.astype(dt) <= dt.type(fpr) * fp[:, -1:].astype(dt)
    best, total = np.max(np.where(ok, tp, 0), axis=1), tp[:, -1]
    return np.where(best == total, dt.type(1), best.astype(dt) / total.astype(dt))


def bootstrap_replicates(s_in, s_out, fprs: tuple, c_in, c_out) -> np.ndarray:
    """Statistics of every row of group counts, on the host.

    Args:
      s_in: (G_in, P_in) and s_out: (G_out, P_out) scores (NumPy, one float dtype).
      fprs: one entry per statistic, None for the AUC or a float for the TPR at that FPR.
      c_in: (R + 1, G_in) and c_out: (R + 1, G_out) integer group counts (row 0: all ones).

    Returns:
      (R + 1, len(fprs)) statistics in the scores' dtype.
    """
    s_in, s_out = np.asarray(s_in), np.asarray(s_out)
    dt = s_in.dtype
    g_in, p_in = s_in.shape
    g_out, p_out = s_out.shape
    srt = _Sorted(s_in, s_out)
    group = np.concatenate(
        [np.repeat(np.arange(g_in), p_in), g_in + np.repeat(np.arange(g_out), p_out)]
    )[srt.order]
    counts = np.concatenate([np.asarray(c_in, np.int64), np.asarray(c_out, np.int64)], axis=1)
    group_in, group_out = group[srt.in_pos], group[srt.out_pos]
    rows = max(1, _CHUNK_ELEMENTS // group.size)
    out = np.empty((counts.shape[0], len(fprs)), dt)
    for lo in range(0, counts.shape[0], rows):
        block = counts[lo : lo + rows]
        w = block[:, group] if any(f is not None for f in fprs) else None
        for j, fpr in enumerate(fprs):
            if fpr is None:
                out[lo : lo + rows, j] = _auc_rows(srt, block[:, group_in], block[:, group_out])
            else:
                out[lo : lo + rows, j] = _tpr_rows(srt, w, fpr, dt)
    return out


def interval_arrays(vals: np.ndarray, level: float) -> tuple[np.ndarray, ...]:
    """(estimate, low, high, std) per statistic from (R + 1, S) values (row 0: the estimate)."""
    dt = vals.dtype
    estimate, reps = vals[0], vals[1:]
    alpha = (1.0 - level) / 2.0
    q = np.asarray([alpha, 1.0 - alpha], dt)
    low, high = np.quantile(reps, q, axis=0, method="linear").astype(dt)
    std = np.std(reps, axis=0, ddof=1).astype(dt)
    return estimate, low, high, std
