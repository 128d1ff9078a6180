"""ROC summaries of the synthetic-MTL attack scores: pooled over runs and per run, CIs by
resampling tasks (a task's scores in every run and trial form one group).

Used by :func:`mtl_tracing.experiments.pipeline.run_pipeline` (which re-exports
:func:`summarize` and :func:`over_runs_interval`) and the real-data job.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from scipy import stats

from mtl_tracing import attacks, metrics, results
from mtl_tracing.threat import IN_ADVERSARIES as ADVERSARIES

__all__ = ["over_runs_interval", "summarize"]


def over_runs_interval(values: Sequence[float], level: float = 0.95) -> list[float]:
    """Student-t interval for the mean of per-run values ([v, v] for a single run)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return [float(v.mean()), float(v.mean())]
    half = stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return [float(v.mean() - half), float(v.mean() + half)]


def _per_run(key, s_in, s_out, cfg) -> dict:
    """AUC with task-bootstrap CI and TPR at the target FPRs for every run (vmapped)."""
    return _per_run_program(
        key, s_in, s_out, num_resamples=cfg.num_resamples, level=cfg.level, fprs=cfg.fprs
    )


@functools.partial(jax.jit, static_argnames=("num_resamples", "level", "fprs"))
def _per_run_program(key, s_in, s_out, *, num_resamples, level, fprs) -> dict:
    # One program: a vmap outside jit would dispatch (and compile) the bootstrap op by op
    # (~300 small programs, ~10 s on 2 CPU cores for one tiny real-data run).
    aucs = jax.vmap(metrics.auc)(s_in, s_out)

    def boot(kk, a, b):
        iv = metrics.grouped_bootstrap(
            kk, metrics.auc, a, b, num_resamples=num_resamples, level=level, paired=False
        )
        return jnp.stack([iv.low, iv.high])

    cis = jax.vmap(boot)(jax.random.split(key, s_in.shape[0]), s_in, s_out)
    tprs = [jax.vmap(lambda a, b, f=f: metrics.tpr_at_fpr(a, b, f).tpr)(s_in, s_out) for f in fprs]
    return {"auc": aucs, "auc_ci": cis, "tpr": tprs}


def _pooled(s: Array) -> Array:
    """(R, T, trials) -> (T, R * trials): one bootstrap group per task, all runs and trials."""
    return jnp.moveaxis(s, 0, 1).reshape(s.shape[1], -1)


def summarize(key: Array, scores: dict, cfg) -> dict:
    """JSON-ready ROC summary of ``{adversary: AttackScores}`` with (R, T, trials) scores.

    ``cfg``: the pipeline's ``AttackConfig`` (bootstrap resamples, level, target FPRs,
    percentiles). Attacks in the order of the scores.

    Returns ``{attack: {adversary: {...}}}`` with, per cell: ``auc`` (pooled over runs),
    ``auc_ci`` (pooled, tasks resampled), ``auc_per_run`` (R,), ``auc_ci_per_run`` (R, 2),
    ``auc_mean`` / ``auc_ci_over_runs`` (mean of the R per-run AUCs and its t interval),
    ``tpr_at_fpr`` (pooled; target, tpr, realised fpr, threshold; plus ``tpr_per_run``) and
    ``percentile_table`` (pooled: percentile, threshold, tpr, fpr, balanced_accuracy).
    """
    out: dict = {name: {} for name in scores[ADVERSARIES[0]]}
    for i, adv in enumerate(ADVERSARIES):
        sc = scores[adv]
        pooled = attacks.AttackScores(
            {
                n: attacks.GroupedScores(_pooled(g.scores_in), _pooled(g.scores_out))
                for n, g in sc.items()
            }
        )
        k_pool, k_run = jax.random.split(jax.random.fold_in(key, i))
        ev = attacks.evaluate(
            k_pool,
            pooled,
            fprs=cfg.fprs,
            percentiles=cfg.percentiles,
            num_resamples=cfg.num_resamples,
            level=cfg.level,
        )
        for j, name in enumerate(sc):
            g = sc[name]
            per = _per_run(jax.random.fold_in(k_run, j), g.scores_in, g.scores_out, cfg)
            e = ev[name]
            auc_runs = np.asarray(per["auc"], dtype=np.float64)
            tpr_rows = []
            for t, tpr_run in zip(e["tpr_at_fpr"], per["tpr"], strict=True):
                row = results.to_jsonable(t)
                row["tpr_per_run"] = results.to_jsonable(tpr_run)
                tpr_rows.append(row)
            out[name][adv] = {
                "auc": float(e["auc"]),
                "auc_ci": [float(e["auc_ci"].low), float(e["auc_ci"].high)],
                "auc_per_run": auc_runs.tolist(),
                "auc_ci_per_run": np.asarray(per["auc_ci"], dtype=np.float64).tolist(),
                "auc_mean": float(auc_runs.mean()),
                "auc_ci_over_runs": over_runs_interval(auc_runs, cfg.level),
                "tpr_at_fpr": tpr_rows,
                "percentile_table": results.to_jsonable(e["percentile_table"]),
            }
    return out
