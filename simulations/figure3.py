"""Figure 3 (Sec. 6.5): attack AUC vs generalization gaps at training checkpoints.

    python simulations/figure3.py --out runs/figure3
        [--quick] [--seed 0]  (--help: all flags)

The ``mtl-tracing figure3`` job of the registry
(:mod:`mtl_tracing.experiments.registry`): runs it, prints its headline and checks its
own output (exit 1 if the check fails, 2 on bad input).
"""

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("figure3"))
