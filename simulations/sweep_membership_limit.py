"""The T = 1 membership-inference limit: AUC versus d/N at T = 1, k = 1, with theory.

With one task the release is that task's sample mean, so tracing the task is membership
inference of one training sample; the strong AUC grows with d/N. Usage:
python simulations/sweep_membership_limit.py --out runs/sweep_membership_limit [--quick]
Writes the sweep, a figure of AUC vs d/N (points: simulation, line: exact theory) and checks.
"""

from __future__ import annotations

import argparse

import numpy as np

from mtl_tracing import plotting, sweep
from mtl_tracing.commands.plot_sweep import plot_sweep


def run(out_dir, quick: bool = False) -> dict:
    """Sweep d and N at T = k = 1 into ``out_dir``, plot AUC vs d/N, check against theory."""
    dims = (4, 16, 64) if quick else (4, 16, 64, 256, 1024)
    ns = (4, 16) if quick else (4, 16, 64)
    spec = sweep.SweepSpec(
        tasks=(1,),
        samples=ns,
        dim=dims,
        challenge=(1,),
        games=400 if quick else 4000,
        num_resamples=50 if quick else 200,
    )
    table = sweep.run_sweep(spec, out_dir)
    plot_sweep(out_dir)
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
        ax.set_xscale("log")
        ax.set_xlabel("d / N")
        ax.set_ylabel("AUC at T = 1, k = 1")
        ax.legend()
        plotting.save_figure(fig, out_dir, "auc_vs_d_over_n")
    se = np.maximum((table["auc_hi"] - table["auc_lo"]) / 3.92, 1e-3)
    assert np.all(np.abs(table["auc"] - table["exact_auc"]) <= 4.5 * se)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/sweep_membership_limit")
    parser.add_argument("--quick", action="store_true", help="small grid and few games")
    args = parser.parse_args()
    run(args.out, quick=args.quick)
    print(f"ok: {args.out}")


if __name__ == "__main__":
    main()
