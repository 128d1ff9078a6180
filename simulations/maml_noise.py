"""MAML Figs. 9-12: noise defences, attack vs utility.

The registry job ``maml_noise`` (flags: ``--help``)."""

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("maml_noise"))
