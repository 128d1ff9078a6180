"""The ``maml_sensitivity`` job (MAML as a victim): run, plot, headline, check.

    python simulations/maml_sensitivity.py --out figures/maml_sensitivity [--quick] [--seed 0]

Thin wrapper over :func:`mtl_tracing.experiments.registry.script_main`.
"""

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("maml_sensitivity"))
