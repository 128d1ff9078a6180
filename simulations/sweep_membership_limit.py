"""The T = 1 membership-inference limit: AUC versus d/N at T = 1, k = 1, with theory.

Usage: python simulations/sweep_membership_limit.py --out runs/sweep_membership_limit
       [--size quick|small|full]

Thin wrapper over :func:`mtl_tracing.experiments.sweeps.membership_limit`: writes the sweep table
(sweep.npz/.json/.csv, resumable: re-run the same command after an interruption) and figures
into --out, then checks every empirical AUC against the exact theory (exit 1 on a failure).
"""

from __future__ import annotations

import argparse
import sys

from mtl_tracing.experiments import sweeps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/sweep_membership_limit")
    parser.add_argument("--size", choices=sweeps.SIZES, default="full", help="grid size")
    args = parser.parse_args(argv)
    try:
        sweeps.membership_limit(args.out, args.size)
    except AssertionError as err:
        print(f"CHECK FAILED: {err}", file=sys.stderr)
        return 1
    print(f"ok: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
