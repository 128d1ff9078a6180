"""The strong-weak AUC gap versus the number of training samples per task N.

Usage: python simulations/sweep_strong_weak_gap.py --out runs/sweep_strong_weak_gap
       [--size quick|small|full]

Thin wrapper over :func:`mtl_tracing.experiments.sweeps.strong_weak_gap`: writes the sweep table
(sweep.npz/.json/.csv, resumable: re-run the same command after an interruption) and figures
into --out, then checks every empirical AUC against the exact theory (exit 1 on a failure).
"""

from __future__ import annotations

import argparse
import sys

from mtl_tracing.experiments import sweeps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/sweep_strong_weak_gap")
    parser.add_argument("--size", choices=sweeps.SIZES, default="full", help="grid size")
    args = parser.parse_args(argv)
    try:
        sweeps.strong_weak_gap(args.out, args.size)
    except AssertionError as err:
        print(f"CHECK FAILED: {err}", file=sys.stderr)
        return 1
    print(f"ok: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
