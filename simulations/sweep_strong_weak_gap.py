"""The strong-weak AUC gap versus the number of training samples per task N.

Usage: python simulations/sweep_strong_weak_gap.py --out runs/sweep_strong_weak_gap
       [--size quick|small|full]

Thin wrapper over :func:`mtl_tracing.experiments.sweeps.strong_weak_gap`: writes the sweep table
(sweep.npz/.json/.csv, resumable: re-run the same command after an interruption) and figures
into --out, then checks every empirical AUC against the exact theory (exit 1 on a failure).
"""

from __future__ import annotations

import sys

from mtl_tracing.experiments.sweeps import script_main


def main(argv: list[str] | None = None) -> int:
    return script_main("strong_weak_gap", argv)


if __name__ == "__main__":
    sys.exit(main())
