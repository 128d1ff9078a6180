"""Three ready sweeps of the Gaussian tracing game (Sec. 4), each with its own check.

* :func:`auc_tasks_dim`: AUC of the strong and weak adversaries over a (T, d) grid;
* :func:`strong_weak_gap`: the strong-weak AUC gap versus N (k = 1): the strong adversary's
  covariance with the release exceeds the weak one's by s^2/(N T) per coordinate, so the gap
  closes as N grows;
* :func:`membership_limit`: T = 1, k = 1 (tracing one task is membership inference of one
  training sample), AUC versus d/N.

Each ``run``-style function takes ``(out_dir, size)`` with ``size`` in :data:`SIZES`: ``"quick"``
(seconds, for the tests and ``reproduce --quick``), ``"small"`` (the ``reproduce`` default) and
``"full"`` (the ``simulations/`` scripts' default). It writes the sweep table
(``sweep.npz/.json/.csv``, resumable) and its figures into ``out_dir``, then checks every
empirical AUC against the exact-law AUC within 4.5 bootstrap standard errors
(SE = 95% CI width / 3.92) and raises ``AssertionError`` naming the rows that disagree.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mtl_tracing import plotting, sweep
from mtl_tracing._validate import check_choice

__all__ = [
    "SIZES",
    "GRIDS",
    "SWEEPS",
    "script_main",
    "auc_tasks_dim",
    "strong_weak_gap",
    "membership_limit",
]

SIZES = ("quick", "small", "full")
_Z = 4.5  # false-failure probability ~7e-6 per row under a normal estimate

#: SweepSpec arguments of each ready sweep at each size (edit or monkeypatch to change a grid).
GRIDS: dict[str, dict[str, dict]] = {
    "auc_tasks_dim": {
        "quick": dict(tasks=(4, 16, 64), dim=(16, 64), games=100, num_resamples=50),
        "small": dict(tasks=(16, 64, 256), dim=(64, 256, 1024), games=300, num_resamples=100),
        "full": dict(tasks=(16, 64, 256, 1024), dim=(64, 256, 1024, 4096), games=500),
    },
    "strong_weak_gap": {
        size: dict(tasks=(16,), samples=ns, dim=(64,), challenge=(1,), games=g, num_resamples=r)
        for size, ns, g, r in (
            ("quick", (1, 2, 4, 8, 16), 100, 50),
            ("small", (1, 2, 4, 8, 16, 32, 64), 400, 200),
            ("full", (1, 2, 4, 8, 16, 32, 64, 128), 1000, 200),
        )
    },
    "membership_limit": {
        size: dict(tasks=(1,), samples=ns, dim=ds, challenge=(1,), games=g, num_resamples=r)
        for size, ns, ds, g, r in (
            ("quick", (4, 16), (4, 16, 64), 400, 50),
            ("small", (4, 16, 64), (4, 16, 64, 256), 2000, 200),
            ("full", (4, 16, 64), (4, 16, 64, 256, 1024), 4000, 200),
        )
    },
}


def _se(table: dict) -> np.ndarray:
    """Bootstrap SE of each row's AUC from its 95% percentile CI (floored at 1e-3)."""
    return np.maximum((table["auc_hi"] - table["auc_lo"]) / 3.92, 1e-3)


def _check_auc(table: dict) -> None:
    bad = np.abs(table["auc"] - table["exact_auc"]) > _Z * _se(table)
    if bad.any():
        rows = np.flatnonzero(bad).tolist()
        raise AssertionError(f"{bad.sum()} rows disagree with the exact AUC: rows {rows}")


def _run(spec: sweep.SweepSpec, out_dir, progress: bool) -> dict:
    from mtl_tracing.experiments.sweep_plots import plot_sweep

    table = sweep.run_sweep(spec, out_dir, progress=progress)
    plot_sweep(out_dir)
    return table


def auc_tasks_dim(out_dir: str | os.PathLike, size: str = "full", *, progress: bool = True):
    """AUC (strong, weak) over T x d; also a heatmap per adversary. Returns the sweep table."""
    check_choice("size", size, SIZES)
    table = _run(sweep.SweepSpec(**GRIDS["auc_tasks_dim"][size]), out_dir, progress)
    _check_auc(table)
    return table


def gap(table: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(N, empirical strong - weak AUC gap, its SE bound, exact gap) per cell.

    The SE bound is the sum of the two bootstrap SEs (conservative for correlated AUCs).
    """
    s = table["adversary"] == "strong"
    w = table["adversary"] == "weak"
    emp = table["auc"][s] - table["auc"][w]
    se = _se({k: v[s] for k, v in table.items()}) + _se({k: v[w] for k, v in table.items()})
    exact = table["exact_auc"][s] - table["exact_auc"][w]
    return table["samples"][s], emp, se, exact


def strong_weak_gap(out_dir: str | os.PathLike, size: str = "full", *, progress: bool = True):
    """Sweep N at T = 16, d = 64, k = 1; check the gap against theory and that it shrinks."""
    check_choice("size", size, SIZES)
    spec = sweep.SweepSpec(**GRIDS["strong_weak_gap"][size])
    table = _run(spec, out_dir, progress)
    n, emp, se, exact = gap(table)
    bad = np.abs(emp - exact) > _Z * se
    if bad.any():
        raise AssertionError(f"gap disagrees with theory at N = {n[bad].tolist()}")
    if not np.all(np.diff(exact) < 0):
        raise AssertionError(f"exact gap does not shrink with N: {exact.tolist()}")
    for ni, e, x in zip(n, emp, exact, strict=True):
        print(f"N={ni:>4}  gap {e:+.4f}  exact {x:+.4f}")
    return table


def membership_limit(out_dir: str | os.PathLike, size: str = "full", *, progress: bool = True):
    """Sweep d and N at T = k = 1; draw ``auc_vs_d_over_n`` (points: simulation, lines: exact)."""
    check_choice("size", size, SIZES)
    spec = sweep.SweepSpec(**GRIDS["membership_limit"][size])
    table = _run(spec, out_dir, progress)
    ratio = table["dim"] / table["samples"]
    with plotting.style():
        fig, axes = plotting.new_figure(1, 1)
        ax = axes[0, 0]
        for adv in spec.adversaries:
            sel = table["adversary"] == adv
            order = np.argsort(ratio[sel], kind="stable")
            y = table["auc"][sel][order]
            err = np.stack([y - table["auc_lo"][sel][order], table["auc_hi"][sel][order] - y])
            color = plotting.ADVERSARY_COLORS[adv]
            ax.errorbar(
                ratio[sel][order],
                y,
                yerr=np.maximum(err, 0),
                fmt="o",
                ms=3,
                color=color,
                label=f"{adv} (simulation)",
            )
            ax.plot(
                ratio[sel][order],
                table["exact_auc"][sel][order],
                "-",
                color=color,
                alpha=0.6,
                label=f"{adv} (exact)",
            )
        ax.set(xscale="log", xlabel="d / N", ylabel="AUC at T = 1, k = 1")
        ax.legend()
        plotting.save_figure(fig, out_dir, "auc_vs_d_over_n")
    _check_auc(table)
    return table


#: name -> sweep function, in the order ``reproduce`` runs them.
SWEEPS = {
    "sweep_auc_tasks_dim": auc_tasks_dim,
    "sweep_strong_weak_gap": strong_weak_gap,
    "sweep_membership_limit": membership_limit,
}


def script_main(name: str, argv: list[str] | None = None) -> int:
    """Command line of ``simulations/sweep_<name>.py``: ``--out DIR --size quick|small|full``.

    Runs the sweep (resumable: re-run the same command after an interruption) and its check;
    returns 0, or 1 with the failed check on stderr.
    """
    import argparse
    import sys

    fn = SWEEPS[f"sweep_{name}"]
    parser = argparse.ArgumentParser(description=(fn.__doc__ or name).splitlines()[0])
    parser.add_argument("--out", default=f"runs/sweep_{name}", help="output folder")
    parser.add_argument("--size", choices=SIZES, default="full", help="grid size")
    args = parser.parse_args(argv)
    try:
        fn(args.out, args.size)
    except AssertionError as err:
        print(f"CHECK FAILED: {err}", file=sys.stderr)
        return 1
    print(f"ok: {args.out}")
    return 0


def figures(out_dir: str | os.PathLike) -> list[Path]:
    """The figure files a finished sweep folder holds (for reporting)."""
    return sorted(Path(out_dir).glob("*.png"))
