"""Figure 6 (App. A.8): synthetic-MTL ablations over embedding dim, samples, tasks.

    python simulations/figure6.py --out runs/figure6
        [--quick] [--seed 0]  (--help: all flags)

The ``mtl-tracing figure6`` job of the registry
(:mod:`mtl_tracing.experiments.registry`): runs it, prints its headline and checks its
own output (exit 1 if the check fails, 2 on bad input).
"""

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("figure6"))
