"""Tables 1-2 layout (App. A.7): (TPR, FPR) and accuracy at percentile thresholds.

The registry job ``table`` (flags: ``--help``)."""

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("table"))
