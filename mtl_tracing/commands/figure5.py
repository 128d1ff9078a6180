"""``mtl-tracing figure5``: Figure 5 (App. A.7.2); runs the shared Figures 4-5 job."""

from __future__ import annotations

from mtl_tracing.commands.figure4 import add_arguments, run

__all__ = ["NAME", "HELP", "add_arguments", "run"]

NAME = "figure5"
HELP = (
    "Figure 5 (App. A.7.2): task-head similarities; "
    "writes the shared figure45 data and both figures."
)
