"""AUC of the strong and weak adversaries versus the number of tasks T and the dimension d.

Usage: python simulations/sweep_auc_tasks_dim.py --out runs/sweep_auc_tasks_dim [--quick]
Writes the sweep table (sweep.npz/.json/.csv) and figures (PNG + PDF) into --out, then checks
that every empirical AUC lies within 4.5 bootstrap SEs of the exact-law AUC.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mtl_tracing import sweep
from mtl_tracing.commands.plot_sweep import plot_sweep


def check(table: dict, z: float = 4.5) -> None:
    """Every row's AUC within z bootstrap SEs of theory (SE = 95% CI width / 3.92)."""
    se = np.maximum((table["auc_hi"] - table["auc_lo"]) / 3.92, 1e-3)
    bad = np.abs(table["auc"] - table["exact_auc"]) > z * se
    if bad.any():
        raise AssertionError(f"{bad.sum()} rows disagree with theory: {np.flatnonzero(bad)}")


def run(out_dir, quick: bool = False) -> dict:
    """Run the sweep into ``out_dir`` (small grid if ``quick``), plot it, check it."""
    if quick:
        spec = sweep.SweepSpec(tasks=(4, 16, 64), dim=(16, 64), games=100, num_resamples=50)
    else:
        spec = sweep.SweepSpec(tasks=(16, 64, 256, 1024), dim=(64, 256, 1024, 4096), games=500)
    table = sweep.run_sweep(spec, out_dir)
    plot_sweep(out_dir)
    check(table)
    assert (Path(out_dir) / "sweep_heatmap_tasks_dim.png").exists()
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/sweep_auc_tasks_dim")
    parser.add_argument("--quick", action="store_true", help="small grid and few games")
    args = parser.parse_args()
    run(args.out, quick=args.quick)
    print(f"ok: {args.out}")


if __name__ == "__main__":
    main()
