"""Sweep: membership inference (sbar = 0, T = k = 1), AUC vs d/N.

The registry job ``sweep_membership_limit`` (flags: ``--help``)."""

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("sweep_membership_limit"))
