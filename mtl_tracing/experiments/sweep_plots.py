"""Figures of a finished sweep folder: AUC and TPR at FPR against each swept field.

Empirical points carry their bootstrap CIs; exact-law theory is drawn as a dense curve over the
swept range; a two-field sweep also gets heatmaps (:func:`plot_sweep`). The membership-inference
sweep (T = k = 1) also gets AUC against d/N, one line per N (:func:`plot_membership_limit`);
a sweep with the optimal statistic (``lrt``) gets z against Lambda over T, one line per d/N
(:func:`plot_optimal_gap`).
Reads only ``sweep.npz``/``sweep.json`` (no simulation). Used by ``mtl-tracing plot-sweep`` and
:mod:`mtl_tracing.experiments.sweeps`.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

__all__ = ["plot_sweep", "plot_membership_limit", "plot_optimal_gap"]

_INT_FIELDS = ("tasks", "samples", "dim", "challenge")
_SYMBOL = {
    "tasks": "T",
    "samples": "N",
    "dim": "d",
    "challenge": "k",
    "task_std": "sbar",
    "sample_std": "s",
    "mean": "mu_bar",
}


def _dense(field: str, values: np.ndarray, n: int) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    if field in _INT_FIELDS:
        grid = np.unique(np.round(np.geomspace(lo, hi, n)).astype(np.int64))
        return np.union1d(grid, values.astype(np.int64))
    if lo > 0 and hi / lo > 10:
        return np.union1d(np.geomspace(lo, hi, n), values)
    return np.union1d(np.linspace(lo, hi, n), values)


def _theory_curve(base: dict, field: str, xs: np.ndarray, adversary: str, fpr: float):
    from mtl_tracing import gaussian
    from mtl_tracing.gaussian.config import GaussianGameConfig

    aucs, tprs, keep = [], [], []
    for x in xs:
        params = {**base, field: int(x) if field in _INT_FIELDS else float(x)}
        if params["challenge"] > params["samples"]:
            continue
        cfg = GaussianGameConfig(**params)
        keep.append(x)
        aucs.append(gaussian.exact_auc(cfg, adversary))
        tprs.append(gaussian.exact_tpr_at_fpr(cfg, adversary, fpr))
    return np.array(keep), np.array(aucs), np.array(tprs)


def plot_sweep(sweep_dir, out_dir=None, *, dense: int = 40) -> list[Path]:
    """Draw ``sweep_dir``'s table; returns the written figure paths (PNG and PDF)."""
    from mtl_tracing import plotting
    from mtl_tracing.sweep import CONFIG_FIELDS, load_sweep

    sweep_dir = Path(sweep_dir)
    out_dir = sweep_dir if out_dir is None else Path(out_dir)
    t = load_sweep(sweep_dir)
    meta = json.loads((sweep_dir / "sweep.json").read_text())
    fpr = float(meta["spec"]["fpr"])
    swept = [f for f in CONFIG_FIELDS if len(np.unique(t[f])) > 1]
    if not swept:
        swept = ["tasks"]
    advs = list(dict.fromkeys(t["adversary"].tolist()))
    paths: list[Path] = []
    with plotting.style():
        for field in swept:
            others = [f for f in swept if f != field]
            combos = list(itertools.product(*[np.unique(t[f]) for f in others]))[:4]
            fig, axes = plotting.new_figure(2, 1)
            for adv, combo in itertools.product(advs, combos):
                sel = t["adversary"] == adv
                for f, v in zip(others, combo, strict=True):
                    sel &= t[f] == v
                if not sel.any():
                    continue
                x = t[field][sel]
                order = np.argsort(x, kind="stable")
                label = adv + "".join(
                    f", {_SYMBOL[f]}={v:g}" for f, v in zip(others, combo, strict=True)
                )
                color = plotting.ADVERSARY_COLORS.get(adv) if len(combos) == 1 else None
                base = {f: t[f][sel][0].item() for f in CONFIG_FIELDS}
                xs, aucs, tprs = _theory_curve(base, field, _dense(field, x, dense), adv, fpr)
                for ax, (m, lo, hi), curve in (
                    (axes[0, 0], ("auc", "auc_lo", "auc_hi"), aucs),
                    (axes[0, 1], ("tpr", "tpr_lo", "tpr_hi"), tprs),
                ):
                    y = t[m][sel][order]
                    err = np.stack([y - t[lo][sel][order], t[hi][sel][order] - y])
                    pts = ax.errorbar(
                        x[order],
                        y,
                        yerr=np.maximum(err, 0),
                        fmt="o",
                        ms=3,
                        capsize=2,
                        color=color,
                        label=label,
                    )
                    ax.plot(xs, curve, "-", color=pts[0].get_color(), alpha=0.7, linewidth=1)
            for ax, name in ((axes[0, 0], "AUC"), (axes[0, 1], f"TPR at FPR {fpr:g}")):
                ax.set_xlabel(f"{_SYMBOL[field]} ({field})")
                ax.set_ylabel(name)
                if field in _INT_FIELDS and t[field].max() / max(t[field].min(), 1) > 8:
                    ax.set_xscale("log", base=2)
            axes[0, 0].legend(title="points: simulation; lines: exact theory")
            paths += plotting.save_figure(fig, out_dir, f"sweep_{field}")
        if len(swept) == 2:
            fa, fb = swept
            va, vb = np.unique(t[fa]), np.unique(t[fb])
            fig, axes = plotting.new_figure(len(advs), 1)
            for j, adv in enumerate(advs):
                grid = np.full((len(va), len(vb)), np.nan)
                for ia, a in enumerate(va):
                    for ib, b in enumerate(vb):
                        sel = (t["adversary"] == adv) & (t[fa] == a) & (t[fb] == b)
                        if sel.any():
                            grid[ia, ib] = t["auc"][sel].mean()
                ax = axes[0, j]
                im = ax.imshow(
                    grid, origin="lower", vmin=0.5, vmax=1.0, cmap="viridis", aspect="auto"
                )
                for ia, ib in itertools.product(range(len(va)), range(len(vb))):
                    ax.text(ib, ia, f"{grid[ia, ib]:.2f}", ha="center", va="center", fontsize=6)
                ax.set_xticks(range(len(vb)), [f"{v:g}" for v in vb])
                ax.set_yticks(range(len(va)), [f"{v:g}" for v in va])
                ax.set_xlabel(_SYMBOL[fb])
                ax.set_ylabel(_SYMBOL[fa])
                ax.set_title(f"{adv}: empirical AUC")
                ax.grid(False)
            fig.colorbar(im, ax=axes[0, -1])
            paths += plotting.save_figure(fig, out_dir, f"sweep_heatmap_{fa}_{fb}")
    return paths


def plot_membership_limit(sweep_dir, out_dir=None, *, dense: int = 40) -> list[Path]:
    """AUC against d/N of a T = 1, k = 1 sweep, one line per N: ``auc_vs_d_over_n.{png,pdf}``.

    Points: simulated AUC with its bootstrap CI; lines: the exact-law AUC over a dense grid of d
    at that N (strong solid, weak dashed; each N one colour). At sbar = 0 the title says it
    shows membership inference (the weak adversary then sits at exactly 1/2).
    """
    from mtl_tracing import plotting
    from mtl_tracing.sweep import CONFIG_FIELDS, load_sweep

    sweep_dir = Path(sweep_dir)
    out_dir = sweep_dir if out_dir is None else Path(out_dir)
    t = load_sweep(sweep_dir)
    sbars = np.unique(t["task_std"])
    advs = list(dict.fromkeys(t["adversary"].tolist()))
    styles = {"strong": ("o", "-"), "weak": ("s", "--")}
    with plotting.style():
        fig, axes = plotting.new_figure(1, 1, width=4.6, height=3.6)
        ax = axes[0, 0]
        for j, n in enumerate(np.unique(t["samples"])):
            color = f"C{j}"
            for adv in advs:
                sel = (t["adversary"] == adv) & (t["samples"] == n)
                order = np.argsort(t["dim"][sel], kind="stable")
                d = t["dim"][sel][order]
                y = t["auc"][sel][order]
                err = np.stack([y - t["auc_lo"][sel][order], t["auc_hi"][sel][order] - y])
                marker, line = styles.get(adv, ("^", ":"))
                ax.errorbar(
                    d / n, y, yerr=np.maximum(err, 0), fmt=marker, ms=3, capsize=2, color=color
                )
                base = {f: t[f][sel][0].item() for f in CONFIG_FIELDS}
                xs, aucs, _ = _theory_curve(base, "dim", _dense("dim", d, dense), adv, 0.5)
                ax.plot(xs / n, aucs, line, color=color, linewidth=1, label=f"N = {n}, {adv}")
        ax.plot([], [], "ko", ms=3, label="points: simulation (95% CI)")
        ax.plot([], [], "k-", linewidth=1, label="lines: exact theory")
        ax.axhline(0.5, color="0.5", linestyle=":", linewidth=1.0)
        ax.set(xscale="log", xlabel="d / N", ylabel="AUC")
        if sbars.size == 1 and sbars[0] == 0:
            title = r"Membership inference ($\bar\sigma = 0$, T = 1, k = 1): AUC vs d/N"
        else:
            sb = ", ".join(f"{v:g}" for v in sbars)
            title = rf"Tracing one task ($\bar\sigma$ = {sb}, T = 1, k = 1): AUC vs d/N"
        ax.set_title(title)
        ax.legend(fontsize=7)
        return plotting.save_figure(fig, out_dir, "auc_vs_d_over_n")


def plot_optimal_gap(sweep_dir, out_dir=None, *, dense: int = 48) -> list[Path]:
    """The optimal statistic against the paper's: ``optimal_gap.{png,pdf}`` of a sweep run with
    ``lrt`` (``sweep_optimal_gap``).

    One row per adversary; AUC (left) and TPR at the sweep's FPR (right) against T, one colour
    per d/N. Points: simulated z (circles) and Lambda (triangles) with their bootstrap CIs;
    lines: the exact z (solid) and Lambda (dashed) over a dense grid of T (``roc_theory``).
    """
    from mtl_tracing import gaussian, plotting
    from mtl_tracing.sweep import load_sweep

    sweep_dir = Path(sweep_dir)
    out_dir = sweep_dir if out_dir is None else Path(out_dir)
    t = load_sweep(sweep_dir)
    fpr = float(json.loads((sweep_dir / "sweep.json").read_text())["spec"]["fpr"])
    advs = list(dict.fromkeys(t["adversary"].tolist()))
    combos = sorted({tuple(t[f][i].item() for f in _LINE_FIELDS) for i in range(len(t["dim"]))})
    with plotting.style():
        fig, axes = plotting.new_figure(2, len(advs), width=3.6, height=2.9)
        for row, adv in enumerate(advs):
            for j, combo in enumerate(combos):
                sel = t["adversary"] == adv
                for f, v in zip(_LINE_FIELDS, combo, strict=True):
                    sel &= t[f] == v
                order = np.argsort(t["tasks"][sel], kind="stable")
                x = t["tasks"][sel][order]
                n, d, k, sb, s = combo
                xs = _dense("tasks", x, dense)
                color = f"C{j}"
                for col, metric in enumerate(("auc", "tpr")):
                    ax = axes[row, col]
                    for prefix, marker, line in (("", "o", "-"), ("lrt_", "^", "--")):
                        y = t[prefix + metric][sel][order]
                        lo, hi = (
                            t[f"{prefix}{metric}_lo"][sel][order],
                            t[f"{prefix}{metric}_hi"][sel][order],
                        )
                        ax.errorbar(x, y, yerr=np.maximum(np.stack([y - lo, hi - y]), 0),
                                    fmt=marker, ms=3, capsize=2, color=color)  # fmt: skip
                        stat = "lrt" if prefix else "z"
                        th = gaussian.roc_theory(xs, n, d, k, sb, s, adv, fpr, statistic=stat)
                        label = f"d/N = {d / n:g} (N = {n})" if (col, prefix) == (0, "") else None
                        ax.plot(xs, th[f"exact_{metric}"], line, color=color, lw=1, label=label)
            for col, name in enumerate(("AUC", f"TPR at FPR {fpr:g}")):
                ax = axes[row, col]
                ax.set(xscale="log", xlabel="T (tasks)", ylabel=name, title=f"{adv}: {name}")
        axes[0, 0].plot([], [], "k-", lw=1, label="z (paper): exact, o simulated")
        axes[0, 0].plot([], [], "k--", lw=1, label="optimal Lambda: exact, ^ simulated")
        axes[0, 0].legend(fontsize=6)
        fig.suptitle("How good is the paper's test? z against the Neyman-Pearson optimal test")
        return plotting.save_figure(fig, out_dir, "optimal_gap")


_LINE_FIELDS = ("samples", "dim", "challenge", "task_std", "sample_std")
