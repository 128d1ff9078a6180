"""MAML Figs. 5-8: ways, shots, epoch.

The registry job ``maml_sensitivity`` (flags: ``--help``)."""

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("maml_sensitivity"))
