"""Sweep: the strong-weak AUC gap against N, samples per task.

The registry job ``sweep_strong_weak_gap`` (flags: ``--help``)."""

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("sweep_strong_weak_gap"))
