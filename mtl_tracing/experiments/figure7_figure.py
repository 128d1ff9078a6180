"""The figure of job ``figure7`` (:mod:`.figure7`), drawn from its output folder alone: (a)
ROC, (b) log-log ROC, (c) histograms of z with exact densities; the exact curves of z (dashed)
and of the optimal statistic Lambda (dotted) come from the closed-form theory."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mtl_tracing import plotting
from mtl_tracing.experiments.figure7 import STEM, config_from_json, load
from mtl_tracing.threat import IN_ADVERSARIES

__all__ = ["draw", "exact_roc_points"]


def _label(a: dict) -> str:
    return (
        f"AUC {a['empirical']:.3f} [{a['ci'][0]:.3f}, {a['ci'][1]:.3f}]\n  exact {a['exact']:.3f}"
    )


def exact_roc_points(
    config, *, lo: float = 5e-5, points: int = 160
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Points of the exact (marginal) ROC, dense in log and linear FPR from ``lo`` to 1.

    Parametrised by the threshold t: FPR = P(z_OUT > t), TPR = P(z_IN > t) from the exact laws
    (``ScoreLaw.sf``), so every point lies exactly on ``gaussian.exact_roc``; thresholds come from
    the exact ``isf`` at 7 anchor FPRs (``lo`` ... 0.999), interpolated in between, so the FPRs
    cover the grid. (``gaussian.exact_roc`` on the whole grid needs ``isf`` per point, ~10x slower.)
    Returns ``fpr`` of shape (P + 2,) from 0 to 1 and ``{adversary: tpr}`` of the same shape.
    """
    from mtl_tracing import gaussian

    laws_in = {adv: gaussian.exact_law(config, adv) for adv in IN_ADVERSARIES}
    return _exact_curve(gaussian.exact_law(config, "out"), laws_in, lo, points)


def _exact_curve(law_out, laws_in: dict, lo: float, points: int):
    """(fpr, {name: tpr}) of ``laws_in`` against ``law_out`` (see :func:`exact_roc_points`)."""
    from scipy import special

    grid = np.unique(
        np.concatenate([np.geomspace(lo, 0.5, points // 2), np.linspace(0.0, 1.0, points // 2)])
    )
    grid = grid[(grid >= lo) & (grid <= 0.999)]
    # Exact thresholds at a few anchor FPRs, interpolated in the normal score ndtri(1 - fpr).
    anchors = np.array([lo, 1e-3, 1e-2, 0.1, 0.5, 0.9, 0.999])
    t_anchor = np.asarray(law_out.isf(anchors), dtype=np.float64)
    z_anchor = special.ndtri(1.0 - anchors)  # decreasing
    t = np.interp(special.ndtri(1.0 - grid), z_anchor[::-1], t_anchor[::-1])
    fpr = np.asarray(law_out.sf(t), dtype=np.float64)
    tprs = {}
    for name, law in laws_in.items():
        tpr = np.asarray(law.sf(t), dtype=np.float64)
        tprs[name] = np.concatenate([[0.0], tpr, [1.0]])
    return np.concatenate([[0.0], fpr, [1.0]]), tprs


def draw(out_dir: str | os.PathLike) -> list[Path]:
    """Redraw Figure 7 from ``out_dir`` (no simulation): (a) ROC, (b) log-log ROC, (c) z histograms.

    Returns the written paths ``[figure7.png, figure7.pdf]``.
    """
    from mtl_tracing import gaussian

    payload, arrays = load(out_dir)
    config = config_from_json(payload)
    games = payload["games"]
    advs = payload["adversaries"]
    colors = plotting.ADVERSARY_COLORS

    exact_fpr, exact_tpr = exact_roc_points(config)
    lrt = {}  # adversary -> (simulated fpr, tpr, exact fpr, tpr) of the optimal statistic
    for adv in IN_ADVERSARIES:
        if f"roc_fpr_{adv}_lrt" in arrays:
            laws = {h: gaussian.lrt_law(config, adv, h) for h in ("in", "out")}
            e_fpr, e_tpr = _exact_curve(laws["out"], {"in": laws["in"]}, 5e-5, 160)
            sim = (arrays[f"roc_fpr_{adv}_lrt"], arrays[f"roc_tpr_{adv}_lrt"])
            lrt[adv] = (*sim, e_fpr, e_tpr["in"])

    with plotting.style():
        fig, axes = plotting.new_figure(3, 1, width=3.3, height=3.0)
        ax_lin, ax_log, ax_hist = axes[0]
        for adv in IN_ADVERSARIES:
            fpr = arrays[f"roc_fpr_{adv}"]
            tpr = arrays[f"roc_tpr_{adv}"]
            label = f"{adv}: {_label(advs[adv]['auc'])}"
            ax_lin.step(fpr, tpr, where="post", color=colors[adv], label=label)
            ax_log.step(fpr, tpr, where="post", color=colors[adv], label=f"{adv} (simulated)")
            for ax in (ax_lin, ax_log):
                ax.plot(exact_fpr, exact_tpr[adv], color="k", linestyle="--", linewidth=0.9)
            if adv in lrt:
                s_fpr, s_tpr, e_fpr, e_tpr = lrt[adv]
                for ax in (ax_lin, ax_log):
                    ax.step(s_fpr, s_tpr, where="post", color=colors[adv], lw=0.8, alpha=0.6)
                    ax.plot(e_fpr, e_tpr, color=colors[adv], linestyle=":", linewidth=1.2)
                a = advs[adv]["lrt"]["auc"]
                ax_lin.plot([], [], color=colors[adv], ls=":", label=f"  optimal: {_label(a)}")
        for ax in (ax_lin, ax_log):
            ax.plot([], [], color="k", linestyle="--", linewidth=0.9, label="exact (theory)")
        plotting.chance_line(ax_lin)
        plotting.chance_line(ax_log, log=True, lo=1e-4)
        ax_lin.set(
            xlim=(0, 1),
            ylim=(0, 1.01),
            xlabel="FPR",
            ylabel="TPR",
            title="(a) ROC, strong and weak vs OUT",
        )
        ax_log.set(
            xscale="log",
            yscale="log",
            xlim=(1e-4, 1),
            ylim=(1e-4, 1.05),
            xlabel="FPR",
            ylabel="TPR",
            title="(b) ROC, log-log",
        )
        ax_lin.legend(loc="lower right")
        ax_log.legend(loc="lower right")

        edges = arrays["hist_edges"]
        width = np.diff(edges)
        ts = np.linspace(edges[0], edges[-1], 400)
        names = (
            ("out", "out", "OUT"),
            ("weak_in", "weak", "weak IN"),
            ("strong_in", "strong", "strong IN"),
        )
        top = 0.0
        for key, adv, label in names:
            counts = arrays[f"hist_{key}"]
            dens = counts / max(counts.sum(), 1) / width
            top = max(top, float(dens.max()))
            if adv == "out":
                ax_hist.stairs(dens, edges, color=colors[adv], fill=True, alpha=0.35, label=label)
            else:
                ax_hist.stairs(dens, edges, color=colors[adv], linewidth=1.1, label=label)
            pdf = np.asarray(gaussian.exact_law(config, adv).pdf(ts), dtype=np.float64)
            ax_hist.plot(
                ts, pdf, color="k" if adv == "out" else colors[adv], linestyle="--", linewidth=0.9
            )
        ax_hist.plot([], [], color="k", linestyle="--", linewidth=0.9, label="exact densities")
        ax_hist.set(
            xlabel=r"$z = \langle \hat\mu - \bar\mu,\ \mu_B - \bar\mu \rangle$",
            ylabel="density",
            ylim=(0, 1.4 * top),
            title="(c) distribution of the test statistic $z$",
        )
        ax_hist.legend(loc="upper left", ncols=2)
        fig.suptitle(
            "Tracing attack on multitask mean estimation "
            rf"($T={config.tasks}$, $d={config.dim}$, $N={config.samples}$, "
            rf"$k={config.challenge}$, "
            rf"$\bar\sigma={config.task_std:g}$, $\sigma={config.sample_std:g}$; {games} games)"
        )
        return plotting.save_figure(fig, out_dir, STEM)
