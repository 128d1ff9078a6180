"""The strong-weak AUC gap versus the number of training samples per task N.

The strong adversary's covariance with the release exceeds the weak one's by s^2/(N T) per
coordinate, so the gap closes as N grows. Usage:
python simulations/sweep_strong_weak_gap.py --out runs/sweep_strong_weak_gap [--quick]
Writes the sweep and figures, then checks the gap against theory and its decrease in N.
"""

from __future__ import annotations

import argparse

import numpy as np

from mtl_tracing import sweep
from mtl_tracing.commands.plot_sweep import plot_sweep


def gap(table: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(N, empirical gap, its SE bound, exact gap) per cell; rows come in strong/weak pairs."""
    s = table["adversary"] == "strong"
    w = table["adversary"] == "weak"
    emp = table["auc"][s] - table["auc"][w]
    # Conservative SE of a difference of correlated AUCs: sum of the two bootstrap SEs.
    se = ((table["auc_hi"] - table["auc_lo"])[s] + (table["auc_hi"] - table["auc_lo"])[w]) / 3.92
    exact = table["exact_auc"][s] - table["exact_auc"][w]
    return table["samples"][s], emp, np.maximum(se, 1e-3), exact


def run(out_dir, quick: bool = False) -> dict:
    """Sweep N (k = 1) into ``out_dir``, plot, and check the gap against theory."""
    ns = (1, 2, 4, 8, 16) if quick else (1, 2, 4, 8, 16, 32, 64, 128)
    games = 100 if quick else 1000
    spec = sweep.SweepSpec(
        tasks=(16,),
        samples=ns,
        dim=(64,),
        challenge=(1,),
        games=games,
        num_resamples=50 if quick else 200,
    )
    table = sweep.run_sweep(spec, out_dir)
    plot_sweep(out_dir)
    n, emp, se, exact = gap(table)
    assert np.all(np.abs(emp - exact) <= 4.5 * se), (emp, exact, se)
    assert np.all(np.diff(exact) < 0), exact  # theory: the gap shrinks with N
    for ni, e, x in zip(n, emp, exact, strict=True):
        print(f"N={ni:>4}  gap {e:+.4f}  exact {x:+.4f}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/sweep_strong_weak_gap")
    parser.add_argument("--quick", action="store_true", help="fewer N values and games")
    args = parser.parse_args()
    run(args.out, quick=args.quick)
    print(f"ok: {args.out}")


if __name__ == "__main__":
    main()
