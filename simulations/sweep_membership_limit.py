"""Sweep: membership inference (sbar = 0, T = k = 1), AUC vs d/N.

    python simulations/sweep_membership_limit.py --out runs/sweep_membership_limit
        [--quick] [--seed 0]  (--help: all flags)

The ``mtl-tracing sweep_membership_limit`` job of the registry
(:mod:`mtl_tracing.experiments.registry`): runs it, prints its headline and checks its
own output (exit 1 if the check fails, 2 on bad input).
"""

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("sweep_membership_limit"))
