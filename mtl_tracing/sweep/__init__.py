"""Vectorised, sharded, resumable parameter sweeps.

Modules (one concept each):

* :mod:`~mtl_tracing.sweep.spec`: :class:`SweepSpec` (the Gaussian game's grid) and the cell
  table;
* :mod:`~mtl_tracing.sweep.engine`: :func:`run_sweep` and the :class:`CellRunner` protocol;
* :mod:`~mtl_tracing.sweep.store`: the output folder, chunk files (resume), npz/json/csv;
* :mod:`~mtl_tracing.sweep.gaussian`: the Gaussian game's runner, its statistics and theory
  columns.

``run_sweep(spec, gaussian_runner(spec), out_dir)`` runs a Gaussian sweep (the runner is the
default).
"""

from mtl_tracing.sweep.engine import CellRunner, run_sweep, trace_count, trace_counts
from mtl_tracing.sweep.gaussian import COLUMNS, RELEASE_COLUMNS, bytes_per_cell, gaussian_runner
from mtl_tracing.sweep.spec import (
    ADVERSARIES,
    CONFIG_FIELDS,
    RELEASE_FIELDS,
    SHAPE_FIELDS,
    TRACED_FIELDS,
    ReleaseCellConfig,
    SweepSpec,
    cell_table,
)
from mtl_tracing.sweep.store import FORMAT, load_sweep

__all__ = [
    "ADVERSARIES",
    "CONFIG_FIELDS",
    "SHAPE_FIELDS",
    "TRACED_FIELDS",
    "RELEASE_FIELDS",
    "COLUMNS",
    "RELEASE_COLUMNS",
    "FORMAT",
    "SweepSpec",
    "ReleaseCellConfig",
    "CellRunner",
    "gaussian_runner",
    "bytes_per_cell",
    "cell_table",
    "run_sweep",
    "load_sweep",
    "trace_count",
    "trace_counts",
]
