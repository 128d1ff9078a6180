"""Sweep: AUC of the strong and weak adversaries against T and d.

The registry job ``sweep_auc_tasks_dim`` (flags: ``--help``)."""

import sys

from mtl_tracing.experiments.registry import script_main

if __name__ == "__main__":
    sys.exit(script_main("sweep_auc_tasks_dim"))
