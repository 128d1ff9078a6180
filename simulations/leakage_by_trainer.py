"""Study: task-inference leakage of standard, GMRF, robust and DP-SGD MTL on the same data.

The registry job ``leakage_by_trainer`` (flags: ``--help``)."""

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("leakage_by_trainer"))
