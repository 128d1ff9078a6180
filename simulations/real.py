"""Tables 1-2 and Figs 1-5 on the paper's real data (needs --data-dir).

The registry job ``real`` (flags: ``--help``)."""

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("real"))
