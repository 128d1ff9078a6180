"""Figure 7: ROC and score distributions of the tracing attack, simulation vs theory.

The registry job ``figure7`` (flags: ``--help``)."""

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("figure7"))
