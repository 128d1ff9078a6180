"""Figure 7's numbers per adversary: empirical (ROC, AUC and TPR with game-bootstrap CIs,
percentile table, moments) beside the exact theory, for z and for the optimal statistic Lambda.

Used by :mod:`.figure7` (``run``); cheap to import (JAX, the metrics and the theory are
imported when a function runs).
"""

from __future__ import annotations

import numpy as np

from mtl_tracing import results
from mtl_tracing.threat import IN_ADVERSARIES

__all__ = [
    "FPR_TARGETS",
    "PERCENTILES",
    "downsample_roc",
    "moments_block",
    "lrt_scores",
    "theory",
    "adversary_summary",
]

FPR_TARGETS = (1e-2, 1e-3)
PERCENTILES = (50.0, 75.0, 90.0)
_ROC_POINTS = 600  # stored ROC points per adversary (log + linear FPR grids)
_LEVEL = 0.95


def downsample_roc(fpr: np.ndarray, tpr: np.ndarray, thr: np.ndarray, n_neg: int, points: int):
    """Keep the ROC vertices that are the last ones at or below a log+linear grid of FPRs.

    ROC arrays are non-decreasing in FPR and TPR, so the last vertex with fpr <= f carries the
    best TPR at FPR f: the stored curve is exactly the empirical one evaluated on the grid.
    """
    lo = max(1.0 / max(n_neg, 1), 1e-7)
    grid = np.concatenate(
        [np.geomspace(lo, 1.0, points // 2), np.linspace(0.0, 1.0, points - points // 2)]
    )
    idx = np.searchsorted(fpr, grid, side="right") - 1
    idx = np.unique(np.clip(np.concatenate([[0, len(fpr) - 1], idx]), 0, len(fpr) - 1))
    return fpr[idx], tpr[idx], thr[idx]


def _interval(iv) -> list[float]:
    return [float(iv.low), float(iv.high)]


def moments_block(z, mean, var) -> dict:
    """Empirical moments of z (G, T) by :func:`metrics.group_moments` (games are the groups)
    beside the exact ``mean`` and ``var``."""
    from mtl_tracing.metrics import group_moments

    g = group_moments(z)
    return {
        "mean": {"empirical": g.mean, "se": g.mean_se, "exact": float(mean)},
        "var": {"empirical": g.var, "se": g.var_se, "exact": float(var)},
    }


def lrt_scores(config, sc, nm) -> dict:
    """``{adversary: (Lambda_IN, Lambda_OUT)}``, (G, T), computed in float64 from the scores
    ``sc`` and norms ``nm`` and returned in the scores' dtype (the bootstrap program of z
    serves them: same shapes and dtype)."""
    from mtl_tracing import gaussian

    dt = np.asarray(sc.out).dtype
    a2 = np.asarray(nm.alpha_sq, np.float64)[:, None]
    out = {}
    for i, adv in enumerate(IN_ADVERSARIES):
        abc = gaussian.lrt_second_order(config, adv)
        z_in, sq_in = (np.asarray(x, np.float64) for x in (sc[i], nm[1 + i]))
        z_out, sq_out = (np.asarray(x, np.float64) for x in (sc.out, nm.out_sq))
        out[adv] = (
            gaussian.lrt_statistic(z_in, a2, sq_in, *abc).astype(dt),
            gaussian.lrt_statistic(z_out, a2, sq_out, *abc).astype(dt),
        )
    return out


def theory(config, adversary: str, statistic: str) -> dict:
    """The exact numbers of ``statistic`` ("z" or "lrt", the optimal Lambda) for one adversary."""
    from mtl_tracing import gaussian

    if statistic == "z":
        mom = gaussian.moments(config)[adversary]
        return {
            "auc": gaussian.exact_auc(config, adversary),
            "normal_auc": gaussian.normal_auc(config, adversary),
            "tpr": [gaussian.exact_tpr_at_fpr(config, adversary, t) for t in FPR_TARGETS],
            "normal_tpr": [gaussian.normal_tpr_at_fpr(config, adversary, t) for t in FPR_TARGETS],
            "percentiles": gaussian.exact_percentile_table(config, adversary, PERCENTILES),
            "moments": (mom.mean, mom.var),
            "paper": {"paper_mean": float(mom.paper_mean), "paper_var": float(mom.paper_var)},
        }
    t, n, k, sb, s = gaussian.config_args(config)
    cols = [
        gaussian.roc_theory(t, n, config.dim, k, sb, s, adversary, f, statistic="lrt")
        for f in FPR_TARGETS
    ]
    mom = gaussian.lrt_moments(config, adversary)
    return {
        "auc": gaussian.lrt_auc(config, adversary),
        "normal_auc": float(cols[0]["normal_auc"]),
        "tpr": [gaussian.lrt_tpr_at_fpr(config, adversary, f) for f in FPR_TARGETS],
        "normal_tpr": [float(c["normal_tpr"]) for c in cols],
        "percentiles": gaussian.lrt_percentile_table(config, adversary, PERCENTILES),
        "moments": mom["in"],
        "out_moments": mom["out"],
    }


def adversary_summary(key, s_in, s_out, num_resamples, exact) -> tuple[dict, dict]:
    """Numbers (JSON) and arrays (npz) for one IN adversary against OUT; s_* of shape (G, T);
    ``exact`` from :func:`theory`. Array names get the caller's prefix."""
    from mtl_tracing import metrics

    # One paired game bootstrap for the AUC and every TPR target: one sort, shared replicates.
    stats = (metrics.auc, *(metrics.TprAtFprStatistic(t) for t in FPR_TARGETS))
    auc_ci, *tpr_cis = metrics.grouped_bootstrap(
        key, stats, s_in, s_out, num_resamples=num_resamples, level=_LEVEL, paired=True
    )
    auc = float(auc_ci.estimate)
    roc = metrics.roc_curve(s_in, s_out)  # one sort for the curve and the TPR points
    points = metrics.tpr_at_fpr_from_roc(roc, FPR_TARGETS)
    tprs = []
    for j, (target, ci) in enumerate(zip(FPR_TARGETS, tpr_cis, strict=True)):
        tprs.append(
            {
                "target_fpr": target,
                "empirical": float(points.tpr[j]),
                "ci": _interval(ci),
                "se": float(ci.std),
                "realised_fpr": float(points.fpr[j]),
                "threshold": float(points.threshold[j]),
                "exact": float(exact["tpr"][j]),
                "normal_approx": float(exact["normal_tpr"][j]),
            }
        )
    emp = metrics.percentile_table(s_in, s_out, PERCENTILES)
    exact_table = exact["percentiles"]
    table = {
        "empirical": {
            "percentile": np.asarray(emp.percentile).tolist(),
            "threshold": np.asarray(emp.threshold).tolist(),
            "tpr": np.asarray(emp.tpr).tolist(),
            "fpr": np.asarray(emp.fpr).tolist(),
            "balanced_accuracy": np.asarray(emp.balanced_accuracy).tolist(),
        },
        "exact": results.to_jsonable(exact_table),
    }
    summary = {
        "auc": {
            "empirical": auc,
            "ci": _interval(auc_ci),
            "se": float(auc_ci.std),
            "exact": float(exact["auc"]),
            "normal_approx": float(exact["normal_auc"]),
        },
        "tpr_at_fpr": tprs,
        "percentiles": table,
        "moments": {**moments_block(s_in, *exact["moments"]), **exact.get("paper", {})},
    }
    if "out_moments" in exact:  # Lambda's OUT law depends on the adversary
        summary["out_moments"] = moments_block(s_out, *exact["out_moments"])
    fpr, tpr, thr = (np.asarray(a, dtype=np.float64) for a in (roc.fpr, roc.tpr, roc.thresholds))
    fpr, tpr, thr = downsample_roc(fpr, tpr, thr, int(np.size(s_out)), _ROC_POINTS)
    return summary, {"roc_fpr": fpr, "roc_tpr": tpr, "roc_thr": thr}
