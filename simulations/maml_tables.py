"""MAML Tables I-II: attack accuracy over ways x shots.

The registry job ``maml_tables`` (flags: ``--help``)."""

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("maml_tables"))
