"""Sweep: the paper's z against the optimal (likelihood-ratio) test, AUC and TPR over T and d/N.

The registry job ``sweep_optimal_gap`` (flags: ``--help``)."""

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("sweep_optimal_gap"))
