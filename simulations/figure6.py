"""Figure 6 (App. A.8): synthetic-MTL ablations over embedding dim, samples, tasks.

The registry job ``figure6`` (flags: ``--help``)."""

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("figure6"))
