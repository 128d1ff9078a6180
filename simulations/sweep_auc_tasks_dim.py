"""Sweep: AUC of the strong and weak adversaries against T and d.

    python simulations/sweep_auc_tasks_dim.py --out runs/sweep_auc_tasks_dim
        [--quick] [--seed 0]  (--help: all flags)

The ``mtl-tracing sweep_auc_tasks_dim`` job of the registry
(:mod:`mtl_tracing.experiments.registry`): runs it, prints its headline and checks its
own output (exit 1 if the check fails, 2 on bad input).
"""

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("sweep_auc_tasks_dim"))
