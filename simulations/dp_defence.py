"""Task-level DP as the defence: GDP bounds in the game, DP-SGD on synthetic MTL, audits.

The registry job ``dp_defence`` (flags: ``--help``)."""

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("dp_defence"))
