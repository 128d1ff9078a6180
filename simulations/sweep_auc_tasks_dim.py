"""AUC of the strong and weak adversaries versus the number of tasks T and the dimension d.

Usage: python simulations/sweep_auc_tasks_dim.py --out runs/sweep_auc_tasks_dim
       [--size quick|small|full]

Thin wrapper over :func:`mtl_tracing.experiments.sweeps.auc_tasks_dim`: writes the sweep table
(sweep.npz/.json/.csv, resumable: re-run the same command after an interruption) and figures
into --out, then checks every empirical AUC against the exact theory (exit 1 on a failure).
"""

from __future__ import annotations

import argparse
import sys

from mtl_tracing.experiments import sweeps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/sweep_auc_tasks_dim")
    parser.add_argument("--size", choices=sweeps.SIZES, default="full", help="grid size")
    args = parser.parse_args(argv)
    try:
        sweeps.auc_tasks_dim(args.out, args.size)
    except AssertionError as err:
        print(f"CHECK FAILED: {err}", file=sys.stderr)
        return 1
    print(f"ok: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
