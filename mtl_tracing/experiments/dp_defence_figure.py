"""The figure of job ``dp_defence`` (:mod:`.dp_defence`), drawn from its output folder alone:
(a) exact and simulated ROCs against the GDP curves, (b) DP-SGD AUC, TPR and utility, (c)
audits against the accountant, (d) the optimal test with a non-binding clip against mu-GDP."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from mtl_tracing.experiments.dp_defence import STEM, Z_GRID, load

__all__ = ["draw"]


def _f(x) -> float:
    """A JSON number back to float: the writer stores inf as null."""
    return math.inf if x is None else float(x)


def draw(out_dir) -> list[Path]:
    """Redraw ``dp_defence.png`` / ``.pdf`` from the data in ``out_dir`` (no computation)."""
    from mtl_tracing import plotting

    payload, arrays = load(out_dir)
    colors = plotting.ADVERSARY_COLORS
    fpr = arrays["fpr_grid"]
    with plotting.style():
        fig, axes = plotting.new_figure(3, 2, width=3.3, height=2.9)
        ax = axes[0][0]
        cmap = plotting.pyplot().get_cmap("viridis")
        for i, row in enumerate(payload["game"]["rows"]):
            c = cmap(i / max(1, len(Z_GRID) - 1))
            ax.plot(
                fpr, arrays[f"z{i}_gdp_tpr"], color=c, lw=1.5, label=f"GDP $\\mu$={row['mu']:g}"
            )
            ax.plot(fpr, arrays[f"z{i}_exact_tpr"], color=c, ls="--", lw=1.0)
            if f"z{i}_lrt_tpr" in arrays:  # runs before the optimal test have no curve
                ax.plot(fpr, arrays[f"z{i}_lrt_tpr"], color=c, ls=":", lw=1.2)
                ad = axes[1][2]
                ad.plot(
                    fpr, arrays[f"z{i}_gdp_tpr"], color=c, lw=1.5, label=f"GDP mu={row['mu']:g}"
                )
                mu_lo, mu_hi = row["lrt_nonbinding_mu_eff"]
                label = f"optimal, mu_eff {mu_lo:.2f}-{mu_hi:.2f}"
                ad.plot(fpr, arrays[f"z{i}_lrt_free_tpr"], color=c, ls="-.", lw=1.0, label=label)
            ax.plot(arrays[f"z{i}_sim_fpr"], arrays[f"z{i}_sim_tpr"], "o", color=c, ms=2)
        plotting.chance_line(ax, log=True, lo=1e-3)
        ax.set(
            xscale="log",
            yscale="log",
            xlim=(1e-3, 1),
            ylim=(1e-3, 1.05),
            xlabel="FPR",
            ylabel="TPR",
            title="(a) GDP curve, clipped (dots); unclipped\nexact: z (dashed), optimal (dotted)",
        )
        ax.legend(loc="lower right", fontsize=6)

        rows = payload["mtl"]["rows"]
        eps = np.array([_f(r["target_epsilon"]) for r in rows])
        finite = eps[np.isfinite(eps)]
        right = (finite.max() * 4) if finite.size else 1.0
        xs = np.where(np.isfinite(eps), eps, right)
        ticks = [f"{e:g}" if np.isfinite(e) else "$\\infty$" for e in eps]
        ax = axes[0][1]
        for adv in ("strong", "weak"):
            cells = [r["attacks"]["variance"][adv] for r in rows]
            auc = np.array([c["auc"] for c in cells])
            lo = np.array([c["auc_ci"][0] for c in cells])
            hi = np.array([c["auc_ci"][1] for c in cells])
            ax.errorbar(
                xs,
                auc,
                yerr=[auc - lo, hi - auc],
                color=colors[adv],
                marker="o",
                ms=3,
                capsize=2,
                label=adv,
            )
        ax.axhline(0.5, color="0.5", ls=":", lw=1)
        ax.set(
            xscale="log",
            xlabel="target $\\varepsilon$",
            ylabel="AUC",
            title="(b) DP-SGD: variance attack AUC",
        )
        ax.set_xticks(xs, ticks)
        ax.legend(loc="best")
        ax = axes[0][2]
        for adv in ("strong", "weak"):
            tpr = [r["attacks"]["variance"][adv]["tpr_at_fpr"][0]["tpr"] for r in rows]
            ax.plot(xs, tpr, marker="o", ms=3, color=colors[adv], label=f"TPR@1% {adv}")
        acc = [r["heldout_accuracy"]["mean"] for r in rows]
        ax.plot(xs, acc, marker="s", ms=3, color="k", label="held-out accuracy")
        ax.set(
            xscale="log",
            xlabel="target $\\varepsilon$",
            ylim=(0, 1.02),
            title="(b) TPR at 1% FPR and utility",
        )
        ax.set_xticks(xs, ticks)
        ax.legend(loc="best", fontsize=6)

        ax = axes[1][0]
        mus = [r["mu"] for r in payload["canary"]["rows"]]
        ax.plot(mus, mus, color="0.5", ls=":", label="$\\mu_{lb} = \\mu$")
        ax.plot(
            mus,
            [r["audit"]["mu_lb"] for r in payload["canary"]["rows"]],
            "o-",
            color="k",
            ms=3,
            label="worst-case canary",
        )
        ax.plot(
            mus,
            [r["tracing_audit"]["mu_lb"] for r in payload["game"]["rows"]],
            "o-",
            color=colors["strong"],
            ms=3,
            label="tracing (strong)",
        )
        ax.plot(
            mus,
            [r["tracing_audit_weak"]["mu_lb"] for r in payload["game"]["rows"]],
            "o-",
            color=colors["weak"],
            ms=3,
            label="tracing (weak)",
        )
        ax.set(
            xlabel="GDP $\\mu$ = 2/z",
            ylabel="audited $\\mu_{lb}$",
            title="(c) audit vs accountant: $\\mu$",
        )
        ax.legend(loc="best", fontsize=6)
        ax = axes[1][1]
        e_acc = [r["epsilon"] for r in payload["canary"]["rows"]]
        ax.plot(e_acc, e_acc, color="0.5", ls=":", label="$\\varepsilon_{lb} = \\varepsilon$")
        ax.plot(
            e_acc,
            [r["audit"]["epsilon_lb"] for r in payload["canary"]["rows"]],
            "o-",
            color="k",
            ms=3,
            label="canary",
        )
        ax.plot(
            e_acc,
            [r["tracing_audit"]["epsilon_lb"] for r in payload["game"]["rows"]],
            "o-",
            color=colors["strong"],
            ms=3,
            label="tracing (strong)",
        )
        e_mtl = [_f(r["epsilon"]) for r in rows]
        lb_mtl = [r["one_run_audit"]["epsilon_lb"] for r in rows]
        ok = np.isfinite(e_mtl)
        ax.plot(
            np.asarray(e_mtl)[ok],
            np.asarray(lb_mtl)[ok],
            "s",
            color="tab:green",
            ms=4,
            label="DP-SGD one-run",
        )
        ax.set(
            xscale="log",
            yscale="symlog",
            xlabel=f"accountant $\\varepsilon$ ($\\delta$={payload['delta']:g})",
            ylabel="audited $\\varepsilon_{lb}$",
            title="(c) audit vs accountant: $\\varepsilon$",
        )
        ax.legend(loc="best", fontsize=6)
        from matplotlib.ticker import NullFormatter

        for ax in (axes[0][1], axes[0][2], axes[1][0], axes[1][1]):
            ax.xaxis.set_minor_formatter(NullFormatter())
        ad = axes[1][2]
        plotting.chance_line(ad, log=True, lo=1e-3)
        ad.set(xscale="log", yscale="log", xlim=(1e-3, 1), ylim=(1e-3, 1.05), xlabel="FPR")
        ad.set(ylabel="TPR", title="(d) optimal test, clip never binding,\nvs GDP (same z)")
        ad.legend(loc="lower right", fontsize=5)
        return plotting.save_figure(fig, out_dir, STEM)
