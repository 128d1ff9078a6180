"""Study: task-inference leakage of standard, GMRF and robust MTL on the same data and seeds.

    python simulations/leakage_by_trainer.py --out figures/leakage_by_trainer [--quick]

Thin wrapper over :mod:`mtl_tracing.experiments.leakage_by_trainer` (registry ``script_main``):
prints the headline, exits 1 if a file is missing or an AUC lies outside its own CI.
"""

from __future__ import annotations

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("leakage_by_trainer"))
