"""Four ready sweeps of the Gaussian tracing game (Sec. 4): one job module, four registry jobs.

* ``sweep_auc_tasks_dim``: AUC of the strong and weak adversaries over a (T, d) grid (with a
  heatmap per adversary);
* ``sweep_strong_weak_gap``: the strong-weak AUC gap versus N (k = 1): the strong adversary's
  covariance with the release exceeds the weak one's by s^2/(N T) per coordinate, so the gap
  closes as N grows;
* ``sweep_membership_limit``: the membership-inference limit sbar = 0 (every task has the same
  mean) at T = 1, k = 1: tracing the one task is membership inference of one training sample.
  AUC versus d/N, one line per N (``auc_vs_d_over_n``); the weak adversary's AUC is exactly 1/2
  there (its challenge sample is a fresh draw of the same law as OUT's);
* ``sweep_optimal_gap``: how good is the paper's test? AUC and TPR at FPR 1e-3 of z and of
  the optimal (Neyman-Pearson) statistic Lambda (:mod:`mtl_tracing.gaussian.optimal`) over T
  and d/N (``optimal_gap``), with the exact lines; the gap closes as T grows (rho^2 <= 1/T).

Job interface (:mod:`.registry`; ``run`` takes the job ``name``): ``--size`` picks the grid in
:data:`GRIDS`: ``"quick"`` (seconds: the tests and ``--quick``), ``"small"`` (the default, as
in ``reproduce``) or ``"full"``. ``run`` writes the sweep table (``sweep.npz/.json/.csv``,
resumable: re-run the same command after an interruption) and ``job.json`` (which sweep, which
size); ``plot`` draws the figures; ``check`` compares every empirical AUC with the exact-law AUC
within :data:`checks.Z` bootstrap standard errors (SE = 95% CI width / 3.92) and checks each
sweep's own claim (the gap shrinks with N; sbar = 0 and a weak AUC of 1/2 in the limit; the
optimal statistic's AUC near its exact value and never below z's).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mtl_tracing import results
from mtl_tracing._validate import check_choice, check_int
from mtl_tracing.experiments import checks, registry
from mtl_tracing.experiments.registry import Option

__all__ = [
    "NAMES",
    "SIZES",
    "GRIDS",
    "JOB_FILE",
    "gap",
    "OPTIONS",
    "QUICK",
    "run",
    "plot",
    "load",
    "headline",
    "check",
]

#: The registry names of the three sweeps, in ``reproduce``'s order.
NAMES = (
    "sweep_auc_tasks_dim",
    "sweep_strong_weak_gap",
    "sweep_membership_limit",
    "sweep_optimal_gap",
)
SIZES = ("quick", "small", "full")
JOB_FILE = "job.json"
OPTIONS = (Option("--size", str, "grid size: quick, small (default) or full", choices=SIZES),)
#: ``--quick``: the ``quick`` grids.
QUICK = {"size": "quick"}

#: SweepSpec arguments of each ready sweep at each size (edit or monkeypatch to change a grid).
GRIDS: dict[str, dict[str, dict]] = {
    "sweep_auc_tasks_dim": {
        "quick": dict(tasks=(4, 16, 64), dim=(16, 64), games=100, num_resamples=50),
        "small": dict(tasks=(16, 64, 256), dim=(64, 256, 1024), games=300, num_resamples=100),
        "full": dict(tasks=(16, 64, 256, 1024), dim=(64, 256, 1024, 4096), games=500),
    },
    "sweep_strong_weak_gap": {
        size: dict(tasks=(16,), samples=ns, dim=(64,), challenge=(1,), games=g, num_resamples=r)
        for size, ns, g, r in (
            ("quick", (1, 2, 4, 8, 16), 100, 50),
            ("small", (1, 2, 4, 8, 16, 32, 64), 400, 200),
            ("full", (1, 2, 4, 8, 16, 32, 64, 128), 1000, 200),
        )
    },
    "sweep_membership_limit": {
        size: dict(
            tasks=(1,),
            samples=ns,
            dim=ds,
            challenge=(1,),
            task_std=(0.0,),
            games=g,
            num_resamples=r,
        )
        for size, ns, ds, g, r in (
            ("quick", (4, 16), (4, 16, 64), 400, 50),
            ("small", (4, 16, 64), (4, 16, 64, 256), 2000, 200),
            ("full", (4, 16, 64), (4, 16, 64, 256, 1024), 4000, 200),
        )
    },
    # z against the optimal Lambda over T and d/N (N = 4 or 8, k = N/2, sbar = s = 1).
    "sweep_optimal_gap": {
        size: dict(
            tasks=ts,
            samples=(n,),
            dim=ds,
            challenge=(n // 2,),
            games=g,
            num_resamples=r,
            fpr=1e-3,
            lrt=True,
        )  # fmt: skip
        for size, ts, n, ds, g, r in (
            ("quick", (1, 4, 16), 4, (16, 64), 1000, 50),
            ("small", (1, 2, 4, 16, 64), 8, (8, 32, 128), 4000, 200),
            ("full", (1, 2, 4, 8, 16, 64, 256), 8, (8, 32, 128, 512), 8000, 200),
        )
    },
}


def run(
    out_dir: str | os.PathLike,
    *,
    name: str,
    size: str = "small",
    seed: int = 0,
    progress: bool = True,
    dtype=None,
) -> Path:
    """Run the sweep ``name`` (one of :data:`NAMES`) at ``size`` into ``out_dir``.

    ``seed`` is the sweep's one seed (cells use ``fold_in``); ``dtype`` float32 (default) or
    float64 (needs x64). Writes ``sweep.npz/.json/.csv`` and ``job.json``; returns ``out_dir``.
    """
    from mtl_tracing import sweep

    check_choice("name", name, NAMES)
    check_choice("size", size, SIZES)
    seed = check_int("seed", seed, low=0)
    out = registry.check_out_dir(out_dir)
    spec = sweep.SweepSpec(**GRIDS[name][size], seeds=(seed,))
    sweep.run_sweep(spec, sweep.gaussian_runner(spec), out, dtype=dtype, progress=progress)
    results.write_json(out / JOB_FILE, {"job": name, "size": size, "seed": seed})
    return out


def load(out_dir: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """``(payload, table)``: ``job.json`` + ``{"spec", "rows"}`` (the table as lists), and the
    table's arrays (:func:`sweep.load_sweep`). ``FileNotFoundError`` when not run yet."""
    from mtl_tracing.sweep import load_sweep

    out = Path(out_dir)
    for name in (JOB_FILE, "sweep.json", "sweep.npz"):
        if not (out / name).is_file():
            raise FileNotFoundError(f"{out / name} not found: run the sweep into {out} first")
    table = load_sweep(out)
    payload = {
        **results.read_json(out / JOB_FILE),
        "spec": results.read_json(out / "sweep.json")["spec"],
        "rows": {k: v.tolist() for k, v in table.items()},
    }
    return payload, table


def plot(out_dir: str | os.PathLike) -> list[Path]:
    """Redraw the sweep's figures from ``out_dir`` (no simulation); returns the written paths."""
    from mtl_tracing.experiments import sweep_plots

    payload, _ = load(out_dir)
    if payload["job"] == "sweep_optimal_gap":  # its own figure (z and Lambda, exact lines)
        return sweep_plots.plot_optimal_gap(out_dir)
    paths = sweep_plots.plot_sweep(out_dir)
    if payload["job"] == "sweep_membership_limit":
        paths += sweep_plots.plot_membership_limit(out_dir)
    return paths


def _se(auc_lo, auc_hi) -> np.ndarray:
    """Bootstrap SE of each row's AUC from its 95% percentile CI (floored at 1e-3)."""
    return np.maximum((np.asarray(auc_hi) - np.asarray(auc_lo)) / 3.92, 1e-3)


def gap(table: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(N, empirical strong - weak AUC gap, its SE bound, exact gap) per cell.

    The SE bound is the sum of the two bootstrap SEs (conservative for correlated AUCs).
    """
    t = {k: np.asarray(v) for k, v in table.items()}
    s = t["adversary"] == "strong"
    w = t["adversary"] == "weak"
    emp = t["auc"][s] - t["auc"][w]
    se = _se(t["auc_lo"][s], t["auc_hi"][s]) + _se(t["auc_lo"][w], t["auc_hi"][w])
    exact = t["exact_auc"][s] - t["exact_auc"][w]
    return t["samples"][s], emp, se, exact


def headline(payload: dict) -> str:
    """The sweep table (first 40 rows): AUC with CI and TPR against the exact values."""
    t = payload["rows"]
    fpr = payload["spec"]["fpr"]
    n = len(t["cell_id"])
    lines = [f"{payload['job']} ({payload['size']}): {n} rows"]
    head = f"{'adv':<6} {'T':>5} {'N':>4} {'d':>6} {'k':>3} {'sbar':>5} {'AUC [CI]':<22}"
    lines.append(head + f" {'exact':>6} {'TPR@' + format(fpr, 'g'):>9} {'exact':>6}")
    for i in range(min(n, 40)):
        lines.append(
            f"{t['adversary'][i]:<6} {t['tasks'][i]:>5} {t['samples'][i]:>4} {t['dim'][i]:>6} "
            f"{t['challenge'][i]:>3} {t['task_std'][i]:>5g} "
            f"{t['auc'][i]:.3f} [{t['auc_lo'][i]:.3f}, {t['auc_hi'][i]:.3f}]"
            f"{'':<3} {t['exact_auc'][i]:>6.3f} {t['tpr'][i]:>9.3f} {t['exact_tpr'][i]:>6.3f}"
        )
    if payload["job"] == "sweep_strong_weak_gap":
        for ni, e, _, x in zip(*gap(t), strict=True):
            lines.append(f"N={ni:>4}  gap {e:+.4f}  exact {x:+.4f}")
    if "lrt_auc" in t:
        lines.append(f"optimal Lambda: {'adv':<6} {'T':>5} {'d/N':>6} {'AUC [CI]':<22} exact")
        for i in range(min(n, 40)):
            lines.append(
                f"{'':<16}{t['adversary'][i]:<6} {t['tasks'][i]:>5} "
                f"{t['dim'][i] / t['samples'][i]:>6g} {t['lrt_auc'][i]:.3f} "
                f"[{t['lrt_auc_lo'][i]:.3f}, {t['lrt_auc_hi'][i]:.3f}]   "
                f"{t['lrt_exact_auc'][i]:.4f} (z {t['exact_auc'][i]:.4f})"
            )
    return "\n".join(lines)


def check(out_dir: str | os.PathLike) -> list[str]:
    """Problems in a finished sweep: missing files; an AUC more than :data:`checks.Z` SEs from
    the exact AUC; the gap sweep's gap off theory or not shrinking with N; the membership
    sweep not at sbar = 0 or a weak AUC other than exactly 1/2 there."""
    out = Path(out_dir)
    problems = checks.missing_files(out, (JOB_FILE, "sweep.json", "sweep.npz", "sweep.csv"))
    if problems:
        return problems
    payload, t = load(out)
    job = payload["job"]
    figures = ["sweep_*.png"] + (
        ["auc_vs_d_over_n.png"] if job.endswith("membership_limit") else []
    )
    if job == "sweep_optimal_gap":
        figures = ["optimal_gap.png"]
    problems += [f"missing {out / f}" for f in figures if not any(out.glob(f))]
    for i, se in enumerate(_se(t["auc_lo"], t["auc_hi"])):
        label = (
            f"row {i} ({t['adversary'][i]}, T={t['tasks'][i]}, N={t['samples'][i]}, "
            f"d={t['dim'][i]})"
        )
        problems += checks.auc_near_exact(label, float(t["auc"][i]), float(t["exact_auc"][i]), se)
    if job == "sweep_strong_weak_gap":
        n, emp, se, exact = gap(t)
        bad = np.abs(emp - exact) > checks.Z * se
        if bad.any():
            problems.append(f"gap disagrees with theory at N = {n[bad].tolist()}")
        if not np.all(np.diff(exact) < 0):
            problems.append(f"exact gap does not shrink with N: {exact.tolist()}")
    if "lrt_auc" in t:  # the optimal statistic: simulation vs exact, and Neyman-Pearson
        for i, se in enumerate(_se(t["lrt_auc_lo"], t["lrt_auc_hi"])):
            label = f"row {i} (optimal, {t['adversary'][i]}, T={t['tasks'][i]}, d={t['dim'][i]})"
            problems += checks.auc_near_exact(
                label, float(t["lrt_auc"][i]), float(t["lrt_exact_auc"][i]), se
            )
        short = t["lrt_exact_auc"] < t["exact_auc"] - 1e-12
        if short.any():
            problems.append(f"exact optimal AUC below z's at rows {np.flatnonzero(short).tolist()}")
    if job == "sweep_membership_limit":
        if np.any(t["task_std"] != 0):
            problems.append(f"membership limit must run at sbar = 0, got {set(t['task_std'])}")
        weak = t["exact_auc"][t["adversary"] == "weak"]
        if np.any(np.abs(weak - 0.5) > 1e-9):
            problems.append(f"weak exact AUC must be 1/2 at sbar = 0, got {weak.tolist()}")
    return problems
