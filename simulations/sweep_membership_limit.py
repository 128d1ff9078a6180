"""The T = 1 membership-inference limit: AUC versus d/N at T = 1, k = 1, with theory.

Usage: python simulations/sweep_membership_limit.py --out runs/sweep_membership_limit
       [--size quick|small|full]

Thin wrapper over :func:`mtl_tracing.experiments.sweeps.membership_limit`: writes the sweep table
(sweep.npz/.json/.csv, resumable: re-run the same command after an interruption) and figures
into --out, then checks every empirical AUC against the exact theory (exit 1 on a failure).
"""

from __future__ import annotations

import sys

from mtl_tracing.experiments.sweeps import script_main


def main(argv: list[str] | None = None) -> int:
    return script_main("membership_limit", argv)


if __name__ == "__main__":
    sys.exit(main())
