"""Figures 4 and 5 (App. A.7.2): variance statistic IN vs OUT, head similarities.

The registry job ``figure45`` (flags: ``--help``)."""

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("figure45"))
