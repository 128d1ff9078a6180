"""Vectorised, sharded, resumable parameter sweeps.

Modules (one concept each):

* :mod:`~mtl_tracing.sweep.spec`: :class:`SweepSpec` (the Gaussian game's grid) and the cell
  table;
* :mod:`~mtl_tracing.sweep.runner`: the :class:`CellRunner` protocol;
* :mod:`~mtl_tracing.sweep.engine`: :func:`run_sweep`;
* :mod:`~mtl_tracing.sweep.store`: the output folder, chunk files (resume), npz/json/csv;
* :mod:`~mtl_tracing.sweep.gaussian`: the Gaussian game's runner, its statistics and theory
  columns.

``run_sweep(spec, gaussian_runner(spec), out_dir)`` runs a Gaussian sweep (the runner is the
default).
"""

from mtl_tracing.sweep.engine import run_sweep, trace_count, trace_counts
from mtl_tracing.sweep.gaussian import (
    COLUMNS,
    LRT_COLUMNS,
    RELEASE_COLUMNS,
    bytes_per_cell,
    gaussian_runner,
)
from mtl_tracing.sweep.runner import CellRunner
from mtl_tracing.sweep.spec import (
    ADVERSARIES,
    CONFIG_FIELDS,
    RELEASE_FIELDS,
    SHAPE_FIELDS,
    TRACED_FIELDS,
    ReleaseCellConfig,
    SweepSpec,
    cell_table,
    field_column,
)
from mtl_tracing.sweep.store import FORMAT, OPTIONAL_COLUMNS, load_sweep

__all__ = [
    "ADVERSARIES",
    "COLUMNS",
    "CONFIG_FIELDS",
    "FORMAT",
    "LRT_COLUMNS",
    "OPTIONAL_COLUMNS",
    "RELEASE_COLUMNS",
    "RELEASE_FIELDS",
    "SHAPE_FIELDS",
    "TRACED_FIELDS",
    "CellRunner",
    "ReleaseCellConfig",
    "SweepSpec",
    "bytes_per_cell",
    "cell_table",
    "field_column",
    "gaussian_runner",
    "load_sweep",
    "run_sweep",
    "trace_count",
    "trace_counts",
]
