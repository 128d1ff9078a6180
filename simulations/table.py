"""Tables 1-2 layout (App. A.7): (TPR, FPR) and accuracy at percentile thresholds.

    python simulations/table.py --out runs/table
        [--quick] [--seed 0]  (--help: all flags)

The ``mtl-tracing table`` job of the registry
(:mod:`mtl_tracing.experiments.registry`): runs it, prints its headline and checks its
own output (exit 1 if the check fails, 2 on bad input).
"""

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("table"))
