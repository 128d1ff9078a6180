"""Sweep: the strong-weak AUC gap against N, samples per task.

    python simulations/sweep_strong_weak_gap.py --out runs/sweep_strong_weak_gap
        [--quick] [--seed 0]  (--help: all flags)

The ``mtl-tracing sweep_strong_weak_gap`` job of the registry
(:mod:`mtl_tracing.experiments.registry`): runs it, prints its headline and checks its
own output (exit 1 if the check fails, 2 on bad input).
"""

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("sweep_strong_weak_gap"))
