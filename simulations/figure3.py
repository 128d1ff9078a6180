"""Figure 3 (Sec. 6.5): attack AUC vs generalization gaps at training checkpoints.

The registry job ``figure3`` (flags: ``--help``)."""

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("figure3"))
