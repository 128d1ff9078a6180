"""Task-level DP as the defence: GDP bounds in the Gaussian game, DP-SGD on synthetic MTL, audits.

    python simulations/dp_defence.py --out figures/dp_defence [--quick] [--seed 0]

Thin wrapper over :mod:`mtl_tracing.experiments.dp_defence` through the job registry: runs the
job, prints the headline table, and exits 1 if its ``check`` finds an audit above the accountant
or a clipped ROC point above its GDP curve.
"""

from __future__ import annotations

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("dp_defence"))
