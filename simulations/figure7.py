"""Figure 7: ROC and score distributions of the tracing attack, simulation vs theory.

    python simulations/figure7.py --out runs/figure7
        [--quick] [--seed 0]  (--help: all flags)

The ``mtl-tracing figure7`` job of the registry
(:mod:`mtl_tracing.experiments.registry`): runs it, prints its headline and checks its
own output (exit 1 if the check fails, 2 on bad input).
"""

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("figure7"))
