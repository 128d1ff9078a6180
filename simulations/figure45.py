"""Figures 4 and 5 (App. A.7.2): variance statistic IN vs OUT, head similarities.

    python simulations/figure45.py --out runs/figure45
        [--quick] [--seed 0]  (--help: all flags)

The ``mtl-tracing figure45`` job of the registry
(:mod:`mtl_tracing.experiments.registry`): runs it, prints its headline and checks its
own output (exit 1 if the check fails, 2 on bad input).
"""

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("figure45"))
