"""Figures 4 and 5 (App. A.7.2) on synthetic MTL, one job.

- Figure 4: distribution of the coordinate-wise variance statistic (Algorithm 1, tr(Q) of the
  k challenge embeddings, *raw* embeddings: no whitening) for IN vs OUT tasks, strong and weak
  adversaries, pooled over runs and trials.
- Figure 5: distribution of the pairwise inner products <beta_i, beta_j> and cosine similarities
  of the learned task heads (all pairs i < j of the (T, m) head matrix, pooled over runs); the
  target heads g_i of the data (independent N(0, I_m), so centred at 0) are the reference.

Files: ``figure45.json`` (pipeline summary, head-similarity summaries, metadata),
``figure45.npz`` (scores and similarities), ``figure4.{png,pdf}``, ``figure5.{png,pdf}``.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from mtl_tracing import plotting, results
from mtl_tracing.experiments import checks, registry

__all__ = [
    "DEFAULT_CONFIG",  # noqa: F822 (built on first use by __getattr__)
    "QUICK_CONFIG",  # noqa: F822
    "JSON_NAME",
    "NPZ_NAME",
    "STEMS",
    "OPTIONS",
    "QUICK",  # noqa: F822
    "head_similarities",
    "run",
    "plot",
    "load",
    "headline",
    "check",
]

JSON_NAME = "figure45.json"
NPZ_NAME = "figure45.npz"
STEMS = ("figure4", "figure5")
OPTIONS = ()
_BINS = 60


@functools.cache
def _constants() -> dict:
    from mtl_tracing.experiments import pipeline as mc

    def raw(config):  # Figure 4 shows the raw (unwhitened) variance statistic
        return config.replace(attack=config.attack.replace(whiten=False))

    quick = raw(mc.QUICK_CONFIG)
    # ``--quick``: the pipeline's tiny config.
    return {
        "DEFAULT_CONFIG": raw(mc.DEFAULT_CONFIG),
        "QUICK_CONFIG": quick,
        "QUICK": {"config": quick},
    }


__getattr__ = registry.lazy_constants(_constants, ("DEFAULT_CONFIG", "QUICK_CONFIG", "QUICK"))


@functools.cache
def _pairs():
    import jax
    import jax.numpy as jnp

    @jax.jit
    def pairs(heads):
        """heads (..., T, m) -> (inner products, cosines), each (..., T (T-1) / 2), pairs i < j."""
        T = heads.shape[-2]
        i, j = np.triu_indices(T, k=1)
        gram = jnp.einsum("...im,...jm->...ij", heads, heads)
        norm = jnp.linalg.norm(heads, axis=-1)
        norm = jnp.where(norm > 0, norm, jnp.ones_like(norm))
        cos = gram / (norm[..., :, None] * norm[..., None, :])
        return gram[..., i, j], cos[..., i, j]

    return pairs


def head_similarities(heads):
    """Pairwise inner products and cosine similarities of task heads (Fig. 5).

    Args:
      heads: (..., T, m) head matrices (e.g. (R, T, m) learned heads of R runs), T >= 2.

    Returns:
      ``(inner, cosine)``, each (..., T (T - 1) / 2) over the pairs i < j (row-major order);
      a zero head has cosine 0 with every other head.
    """
    import jax.numpy as jnp

    h = jnp.asarray(heads)
    if h.ndim < 2 or h.shape[-2] < 2:
        raise ValueError(f"heads must have shape (..., T >= 2, m), got {h.shape}")
    if not bool(jnp.all(jnp.isfinite(h))):
        raise ValueError("heads must be finite, got non-finite values")
    return _pairs()(h)


def _describe(x: np.ndarray) -> dict:
    from mtl_tracing.experiments import pipeline as mc

    x = np.asarray(x, dtype=np.float64)
    per_run = x.reshape(x.shape[0], -1).mean(axis=1) if x.ndim > 1 else x[None].mean(axis=1)
    return {
        "mean": float(x.mean()),
        "std": float(x.std()),
        "mean_per_run": per_run.tolist(),
        "mean_ci_over_runs": mc.over_runs_interval(per_run),
        "quantiles": {str(q): float(np.quantile(x, q)) for q in (0.05, 0.25, 0.5, 0.75, 0.95)},
    }


def _write(out: Path, res, config, seed: int) -> Path:
    """Head similarities and the raw variance scores of a pipeline result: json + npz."""
    from mtl_tracing.experiments import pipeline as mc

    T = config.data.tasks
    learned = res.trained.params["head_kernel"]  # (R, T, m)
    ip, cos = (np.asarray(a, np.float64) for a in head_similarities(learned))
    tip, tcos = (np.asarray(a, np.float64) for a in head_similarities(res.data.info["heads"][:T]))
    arrays = {"heads_inner": ip, "heads_cosine": cos, "target_inner": tip, "target_cosine": tcos}
    for adv in mc.ADVERSARIES:
        g = res.scores[adv].variance
        arrays[f"variance_{adv}_in"] = np.asarray(g.scores_in, np.float64)  # (R, T, trials)
        arrays[f"variance_{adv}_out"] = np.asarray(g.scores_out, np.float64)
    payload = {
        **res.summary,
        "heads": {
            "learned_inner": _describe(ip),
            "learned_cosine": _describe(cos),
            "target_inner": _describe(tip[None]),
            "target_cosine": _describe(tcos[None]),
        },
        "metadata": results.run_metadata(config=config, seed=seed),
    }
    return results.save_outputs(out, JSON_NAME, payload, NPZ_NAME, arrays)


run = registry.pipeline_job(
    _constants,
    _write,
    """Train R runs, score both adversaries, compute head similarities; write json + npz.

    ``config`` is a ``PipelineConfig``, default (None) :data:`DEFAULT_CONFIG`.
    """,
)


#: ``load(out_dir) -> (json payload, npz arrays or None)`` of a finished run.
load = results.outputs_loader(JSON_NAME, NPZ_NAME)


def _hist(ax, values: dict, colors: dict, bins: int, fills: tuple = ()) -> None:
    allv = np.concatenate([np.ravel(v) for v in values.values()])
    lo, hi = float(allv.min()), float(allv.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    for label, v in values.items():
        dens, _ = np.histogram(np.ravel(v), bins=edges, density=True)
        if label in fills:
            ax.stairs(dens, edges, color=colors[label], fill=True, alpha=0.35, label=label)
        else:
            ax.stairs(dens, edges, color=colors[label], linewidth=1.1, label=label)


def plot(out_dir: str | os.PathLike, which: tuple[str, ...] = STEMS) -> list[Path]:
    """Redraw Figure 4 and/or Figure 5 from ``out_dir`` (no training); returns the paths."""
    bad = set(which) - set(STEMS)
    if bad or not which:
        raise ValueError(f"which must be a non-empty subset of {STEMS}, got {which!r}")
    from mtl_tracing.experiments.pipeline import ADVERSARIES

    payload, arr = load(out_dir)
    meta = payload["metadata"]["config"]
    c = plotting.ADVERSARY_COLORS
    paths: list[Path] = []
    with plotting.style():
        if "figure4" in which:
            fig, axes = plotting.new_figure(2, 1, width=3.3, height=2.8)
            for ax, adv in zip(axes[0], ADVERSARIES, strict=True):
                a = payload["attacks"]["variance"][adv]
                vals = {f"{adv} IN": arr[f"variance_{adv}_in"], "OUT": arr[f"variance_{adv}_out"]}
                _hist(ax, vals, {f"{adv} IN": c[adv], "OUT": c["out"]}, _BINS, fills=("OUT",))
                ax.set(
                    xlabel="coordinate-wise variance statistic tr(Q)",
                    ylabel="density",
                    title=f"{adv}: AUC {a['auc']:.3f} [{a['auc_ci'][0]:.3f}, {a['auc_ci'][1]:.3f}]",
                )
                ax.legend(loc="best")
            fig.suptitle(
                "Distribution of the coordinate-wise variance statistic (cf. Fig. 4), k = "
                f"{payload['k']['strong']}/{payload['k']['weak']}, {meta['runs']} runs"
            )
            paths += plotting.save_figure(fig, out_dir, "figure4")
        if "figure5" in which:
            fig, axes = plotting.new_figure(2, 1, width=3.3, height=2.8)
            colors = {"learned heads": c["strong"], "target heads g": c["out"]}
            for ax, kind, xlabel in (
                (axes[0][0], "inner", r"$\langle \beta_i, \beta_j \rangle$"),
                (axes[0][1], "cosine", r"$\cos(\beta_i, \beta_j)$"),
            ):
                vals = {"learned heads": arr[f"heads_{kind}"]}
                if kind == "cosine":  # inner products of g_i ~ N(0, I_m) are on another scale
                    vals["target heads g"] = arr["target_cosine"]
                _hist(ax, vals, colors, _BINS, fills=("target heads g",))
                s = payload["heads"][f"learned_{kind}"]
                ax.axvline(0.0, color="0.3", linestyle=":", linewidth=1.0)
                ax.set(
                    xlabel=xlabel,
                    ylabel="density",
                    title=f"learned: mean {s['mean']:.3g}, std {s['std']:.3g}",
                )
                ax.legend(loc="best")
            fig.suptitle(
                "Task-specific layer similarity, pairs i < j pooled over runs (cf. Fig. 5)"
            )
            paths += plotting.save_figure(fig, out_dir, "figure5")
    return paths


def headline(payload: dict) -> str:
    """Variance-attack AUCs and the learned heads' mean cosine similarity."""
    v, h = payload["attacks"]["variance"], payload["heads"]
    return (
        f"variance AUC strong {v['strong']['auc']:.3f} weak {v['weak']['auc']:.3f}; "
        f"learned head cosine mean {h['learned_cosine']['mean']:.3f} "
        f"(target {h['target_cosine']['mean']:.3f})"
    )


def check(out_dir: str | os.PathLike) -> list[str]:
    """A missing file, or an AUC that is not a number in [0, 1] inside its own CI."""
    files = (JSON_NAME, NPZ_NAME, *(f"{s}.{e}" for s in STEMS for e in ("png", "pdf")))
    return checks.check_attack_output(
        out_dir, files, lambda out: [("default", load(out)[0]["attacks"])]
    )
