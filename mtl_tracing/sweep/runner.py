"""The :class:`CellRunner` protocol: how the sweep engine simulates and scores one cell.

A runner is a tuple of pure functions (as optax's ``GradientTransformation``); a new game is a
new runner (:mod:`~mtl_tracing.sweep.gaussian` is the Gaussian game's) and the engine
(:mod:`~mtl_tracing.sweep.engine`) stays the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

__all__ = ["CellRunner"]


class CellRunner(NamedTuple):
    """How to simulate and score one sweep cell: pure functions the engine compiles.

    Like optax's ``GradientTransformation``, a runner is a tuple of functions; a new game is a
    new runner, the engine stays the same.

    Attributes:
      static_fields: config fields that fix the simulation's shapes; cells are grouped by
        their values, one simulation program per group.
      traced_fields: config fields passed to the simulation as traced scalars (``dtype``).
      simulate: ``simulate(static, games, dtype) -> sim``, where ``static`` is the tuple of
        ``static_fields`` values and ``sim(cell_key, *traced) -> pytree`` is pure and
        traceable, its output shapes fixed by ``static`` and ``games``.
      statistics: ``statistics(cell_key, sim_out) -> dict[str, array]``, pure and traceable:
        a cell's results from its simulation output. Compiled once per shape of ``sim_out``.
      bytes_per_cell: ``bytes_per_cell(static, games, dtype) -> int``, the memory estimate of
        one cell (simulation and statistics), for the chunk size.
      table: ``table(spec, cells, results) -> {column: (rows,)}``, the result table on the
        host from ``cells`` (``spec.cells()``) and each cell's results, in the same order.
      columns: ``{column: description}`` of the table, written to ``sweep.json``.
      bucket: optional ``bucket([(static, cells)], games) -> {static: sim_static}``: cells
        whose statics map to the same ``sim_static`` share ONE simulation program,
        ``simulate(sim_static, games, dtype)``, whose ``sim`` then takes each cell's
        ``static_args(static)`` as traced scalars after the traced fields (the Gaussian
        game: one program for every (T, N, d, k), T padded to the bucket's width).
      static_args: with ``bucket``, ``static_args(static, dtype) -> tuple`` of NumPy
        scalars, one cell's extra ``sim`` arguments (integers go as int32, floats as ``dtype``).
      trim: optional ``trim(static, cell_out) -> cell_out``: a cell's simulation output (NumPy,
        one cell) cut to the cell's own shape before its statistics (with ``bucket``).
      fallback_statistics: optional; when ``statistics`` returns ``"_ok"`` False for a cell
        (the Gaussian game: its bootstrap needs the sorted path), the cell's results are
        recomputed by this function (same signature), compiled only when a cell needs it.
        ``"_ok"`` is not kept.
    """

    static_fields: tuple[str, ...]
    traced_fields: tuple[str, ...]
    simulate: Callable[[tuple, int, Any], Callable]
    statistics: Callable[..., dict]
    bytes_per_cell: Callable[[tuple, int, Any], int]
    table: Callable[..., dict]
    columns: Mapping[str, str]
    bucket: Callable[[list, int], Mapping[tuple, tuple]] | None = None
    static_args: Callable[[tuple, Any], tuple] | None = None
    trim: Callable[[tuple, Any], Any] | None = None
    fallback_statistics: Callable[..., dict] | None = None
