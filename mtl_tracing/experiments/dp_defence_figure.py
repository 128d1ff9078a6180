"""The figure and tables of job ``dp_defence`` (:mod:`.dp_defence`), drawn from its data alone.

Figure (2 x 3 panels): (a) exact and simulated ROCs of the Gaussian game against the GDP
curves, (b) DP-SGD's variance-attack AUC, (c) its TPR at 1% FPR and held-out accuracy, (d) and
(e) audits against the accountant (mu, epsilon), (f) the optimal test with a non-binding clip
against mu-GDP. Tables (``dp_defence.md``): the game's and the canary's audits per noise
multiplier, and DP-SGD per target epsilon with the one-run audit of each model.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from mtl_tracing import plotting

__all__ = ["draw", "render_markdown"]


def _f(x) -> float:
    """A JSON number back to float: the writer stores inf as null."""
    return math.inf if x is None else float(x)


def _eps_axis(rows) -> tuple[np.ndarray, list[str]]:
    """x positions of the target epsilons (inf drawn at 4x the largest finite one) and labels."""
    eps = np.array([_f(r["target_epsilon"]) for r in rows])
    finite = eps[np.isfinite(eps)]
    right = (finite.max() * 4) if finite.size else 1.0
    ticks = [f"{e:g}" if np.isfinite(e) else "$\\infty$" for e in eps]
    return np.where(np.isfinite(eps), eps, right), ticks


def draw(payload: dict, arrays: dict, out_dir: str | os.PathLike, stem: str) -> list[Path]:
    """Draw the figure from a run's ``(payload, arrays)``; ``[<stem>.png, <stem>.pdf]``."""
    from matplotlib.ticker import NullFormatter

    colors = plotting.ADVERSARY_COLORS
    fpr = arrays["fpr_grid"]
    game, canary, rows = payload["game"]["rows"], payload["canary"]["rows"], payload["mtl"]["rows"]
    with plotting.style():
        fig, axes = plotting.new_figure(3, 2, width=3.3, height=2.9)
        (ax_a, ax_b, ax_c), (ax_d, ax_e, ax_f) = axes
        cmap = plotting.pyplot().get_cmap("viridis")
        for i, row in enumerate(game):
            c = cmap(i / max(1, len(game) - 1))
            gdp = arrays[f"z{i}_gdp_tpr"]
            ax_a.plot(fpr, gdp, color=c, lw=1.5, label=f"GDP $\\mu$={row['mu']:g}")
            ax_a.plot(fpr, arrays[f"z{i}_exact_tpr"], color=c, ls="--", lw=1.0)
            if f"z{i}_lrt_tpr" in arrays:  # runs before the optimal test have no curve
                ax_a.plot(fpr, arrays[f"z{i}_lrt_tpr"], color=c, ls=":", lw=1.2)
                ax_f.plot(fpr, gdp, color=c, lw=1.5, label=f"GDP mu={row['mu']:g}")
                mu_lo, mu_hi = row["lrt_nonbinding_mu_eff"]
                label = f"optimal, mu_eff {mu_lo:.2f}-{mu_hi:.2f}"
                ax_f.plot(fpr, arrays[f"z{i}_lrt_free_tpr"], color=c, ls="-.", lw=1.0, label=label)
            ax_a.plot(arrays[f"z{i}_sim_fpr"], arrays[f"z{i}_sim_tpr"], "o", color=c, ms=2)
        title = "(a) GDP curve, clipped (dots); unclipped\nexact: z (dashed), optimal (dotted)"
        plotting.log_roc_axes(ax_a, lo=1e-3, title=title)
        ax_a.legend(loc="lower right", fontsize=6)

        xs, ticks = _eps_axis(rows)
        for adv in ("strong", "weak"):
            cells = [r["attacks"]["variance"][adv] for r in rows]
            lo, hi = zip(*(c["auc_ci"] for c in cells), strict=True)
            auc = [c["auc"] for c in cells]
            plotting.errorbar_ci(ax_b, xs, auc, lo, hi, color=colors[adv], label=adv)
            tpr = [c["tpr_at_fpr"][0]["tpr"] for c in cells]
            ax_c.plot(xs, tpr, marker="o", ms=3, color=colors[adv], label=f"TPR@1% {adv}")
        ax_b.axhline(0.5, color="0.5", ls=":", lw=1)
        ax_b.set(xlabel="target $\\varepsilon$", ylabel="AUC", title="(b) DP-SGD: variance attack")
        acc = [r["heldout_accuracy"]["mean"] for r in rows]
        ax_c.plot(xs, acc, marker="s", ms=3, color="k", label="held-out accuracy")
        ax_c.set(
            xlabel="target $\\varepsilon$",
            ylabel="TPR at 1% FPR; accuracy",
            ylim=(0, 1.02),
            title="(c) DP-SGD: TPR at 1% FPR and utility",
        )
        for ax in (ax_b, ax_c):
            ax.set_xscale("log")
            ax.set_xticks(xs, ticks)
            ax.legend(loc="best", fontsize=6 if ax is ax_c else None)

        mus = [r["mu"] for r in canary]
        eps = [r["epsilon"] for r in canary]
        ax_d.plot(mus, mus, color="0.5", ls=":", label="$\\mu_{lb} = \\mu$")
        ax_e.plot(eps, eps, color="0.5", ls=":", label="$\\varepsilon_{lb} = \\varepsilon$")
        series = (
            ([r["audit"] for r in canary], "k", "worst-case canary"),
            ([r["tracing_audit"] for r in game], colors["strong"], "tracing (strong)"),
            ([r["tracing_audit_weak"] for r in game], colors["weak"], "tracing (weak)"),
        )
        for audits, color, label in series:
            ax_d.plot(mus, [a["mu_lb"] for a in audits], "o-", color=color, ms=3, label=label)
            ax_e.plot(eps, [a["epsilon_lb"] for a in audits], "o-", color=color, ms=3, label=label)
        ax_d.set(xlabel="GDP $\\mu$ = 2/z", ylabel="audited $\\mu_{lb}$")
        ax_d.set_title("(d) audit vs accountant: $\\mu$")
        ax_e.set(
            xscale="log",
            yscale="symlog",
            xlabel=f"accountant $\\varepsilon$ ($\\delta$={payload['delta']:g})",
            ylabel="audited $\\varepsilon_{lb}$",
            title="(e) audit vs accountant: $\\varepsilon$",
        )
        for ax in (ax_d, ax_e):
            ax.legend(loc="best", fontsize=6)
        for ax in (ax_b, ax_c, ax_d, ax_e):
            ax.xaxis.set_minor_formatter(NullFormatter())
        title = "(f) optimal test, clip never binding,\nvs GDP (same z)"
        plotting.log_roc_axes(ax_f, lo=1e-3, title=title)
        ax_f.legend(loc="lower right", fontsize=5)
        return plotting.save_figure(fig, out_dir, stem)


def render_markdown(payload: dict) -> str:
    """``dp_defence.md``: the numbers behind the figure, as tables."""
    from mtl_tracing.audit.one_run import max_epsilon_lb

    game, canary, rows = payload["game"]["rows"], payload["canary"]["rows"], payload["mtl"]["rows"]
    delta = payload["delta"]
    lines = [
        "# Task-level DP: the Gaussian game, DP-SGD and audits",
        "",
        f"## Gaussian game (clip C = {payload['clip']:g}; audits at delta = {delta:g})",
        "",
        "Per noise multiplier z: the release's mu = 2/z and epsilon; the exact AUC of the "
        "strong test on the unclipped release with the same noise; the lower bounds of the "
        "worst-case canary and of the tracing attack (one IN/OUT pair per game).",
        "",
        "| z | mu | epsilon | unclipped exact AUC | canary mu_lb | tracing mu_lb (strong) | "
        "tracing mu_lb (weak) | canary eps_lb | tracing eps_lb (strong) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for g, c in zip(game, canary, strict=True):
        lines.append(
            f"| {g['noise_multiplier']:g} | {g['mu']:.3g} | {g['epsilon']:.3g} | "
            f"{g['unclipped_exact_auc']:.4f} | {c['audit']['mu_lb']:.3f} | "
            f"{g['tracing_audit']['mu_lb']:.3f} | {g['tracing_audit_weak']['mu_lb']:.3f} | "
            f"{c['audit']['epsilon_lb']:.3f} | {g['tracing_audit']['epsilon_lb']:.3f} |"
        )
    tasks = payload["mtl"]["config"]["data"]["tasks"]
    guesses = 2 * max(1, tasks // 4)
    level = rows[0]["one_run_audit"]["level"] if rows else 0.95
    cap = max_epsilon_lb(guesses, level=level)
    lines += [
        "",
        f"## DP-SGD on synthetic MTL (T = {tasks} IN and {tasks} OUT tasks)",
        "",
        "Per target epsilon: the noise multiplier the accountant calibrated, the variance "
        "attack's AUC and TPR at 1% FPR, the held-out accuracy, and the one-run audit "
        "(Steinke et al. 2023) of one model from its tasks' scores.",
        "",
        "| target eps | z | accountant eps | AUC strong | AUC weak | TPR@1% strong | "
        "held-out acc | one-run eps_lb (correct / guesses) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        v, one = r["attacks"]["variance"], r["one_run_audit"]
        lines.append(
            f"| {_f(r['target_epsilon']):g} | {r['noise_multiplier']:.3g} | "
            f"{_f(r['epsilon']):.3g} | {v['strong']['auc']:.3f} | {v['weak']['auc']:.3f} | "
            f"{v['strong']['tpr_at_fpr'][0]['tpr']:.3f} | {r['heldout_accuracy']['mean']:.3f} | "
            f"{one['epsilon_lb']:.3f} ({one['correct']} / {one['guesses']}) |"
        )
    lines += [
        "",
        f"The one-run audit guesses IN for the top quarter and OUT for the bottom quarter of "
        f"the {2 * tasks} tasks ({guesses} guesses): even all correct, it cannot exceed "
        f"epsilon_lb = {cap:.2f} at level {level:g}, and one or two wrong guesses bring it to 0. "
        "It is left out of the figure for this reason. Its IN tasks are a fixed half, not the "
        "independent fair coins the theorem assumes: the numbers illustrate, they certify "
        "nothing.",
        "",
    ]
    return "\n".join(lines)
