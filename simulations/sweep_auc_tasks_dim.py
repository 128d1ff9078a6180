"""AUC of the strong and weak adversaries versus the number of tasks T and the dimension d.

Usage: python simulations/sweep_auc_tasks_dim.py --out runs/sweep_auc_tasks_dim
       [--size quick|small|full]

Thin wrapper over :func:`mtl_tracing.experiments.sweeps.auc_tasks_dim`: writes the sweep table
(sweep.npz/.json/.csv, resumable: re-run the same command after an interruption) and figures
into --out, then checks every empirical AUC against the exact theory (exit 1 on a failure).
"""

from __future__ import annotations

import sys

from mtl_tracing.experiments.sweeps import script_main


def main(argv: list[str] | None = None) -> int:
    return script_main("auc_tasks_dim", argv)


if __name__ == "__main__":
    sys.exit(main())
