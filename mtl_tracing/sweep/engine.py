"""The sweep engine: vectorised, device-sharded, resumable runs of a :class:`CellRunner`.

A sweep is a spec (:class:`~mtl_tracing.sweep.spec.SweepSpec` for the Gaussian game) whose
``cells()`` are (cell_id, config, seed), and a runner that says how to simulate and score one
cell (:class:`~mtl_tracing.sweep.runner.CellRunner`). The engine groups, chunks, shards,
compiles, resumes and assembles; it knows nothing of the game but its default runner
(:func:`~mtl_tracing.sweep.gaussian.gaussian_runner`).

Engine
  * Cells sharing the runner's ``static_fields`` (the Gaussian game: T, N, d, k) form a group;
    a runner with a ``bucket`` merges groups that share a simulation program (the sufficient
    sampler: every (T, N, d, k) of the sweep, T padded). Each group runs as ONE jitted
    *simulation* program over chunks of cells (traced fields and keys are arguments; the cells
    are a ``lax.map`` loop per device), in fixed-size chunks (the last one padded), so a sweep
    compiles one simulation program per bucket.
  * The simulation's output goes through ONE jitted *statistics* program per output shape
    (the Gaussian game: (G, T)), one cell per device per call, so the statistics compile once
    across the fields that only change the simulation (d, N, k), whatever the chunk sizes. A
    cell whose statistics say ``_ok`` False is rescored by the runner's fallback program.
  * Keys: cell ``cell_id`` uses ``cell_key = fold_in(key(root_seed), cell_id)``; both programs
    get it. Results are bitwise identical whatever the chunk size, order or device count: a
    cell's computation is the same compiled loop body in every case.
  * Sharding: the cell axis is sharded over a ``Mesh`` of the local devices
    (``NamedSharding(mesh, P("cells"))``); chunks are padded to a multiple of the device count.
  * Memory: the chunk size comes from ``memory_budget_bytes`` / ``runner.bytes_per_cell``.
  * Resume: each finished chunk is written atomically to ``out_dir/chunks/``
    (:mod:`~mtl_tracing.sweep.store`); a re-run with the same spec skips finished cells, and a
    finished sweep is served from ``out_dir/sweep.npz``.

Multi-host: call ``jax.distributed.initialize(coordinator_address, num_processes,
process_id)`` before :func:`run_sweep`, pass ``process_index``/``process_count``: each process
runs the chunks ``j`` with ``j % process_count == process_index`` on its local devices and
writes their chunk files to the shared ``out_dir``; process 0 then calls :func:`run_sweep`
again (``process_count=1``) which finds every chunk on disk and assembles the table. See
``simulations/multihost_sweep_example.py``.

Adding a game (e.g. the DP-noise game): write its runner, a :class:`CellRunner` of pure
functions, as :mod:`mtl_tracing.sweep.gaussian` does, and a spec with the methods the engine
reads (``cells()``, ``games``, ``root_seed``, ``num_cells``, ``fingerprint(dtype)``,
``to_dict()``; reuse :class:`SweepSpec` if its fields fit). Then ``run_sweep(spec, runner)``.
"""

from __future__ import annotations

import functools
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from mtl_tracing import results
from mtl_tracing._validate import check_dtype, check_int
from mtl_tracing.sweep import store
from mtl_tracing.sweep.gaussian import gaussian_runner
from mtl_tracing.sweep.runner import CellRunner

__all__ = ["CellRunner", "run_sweep", "trace_count", "trace_counts"]  # CellRunner: .runner's


_TRACES = {"simulation": 0, "statistics": 0}


def trace_count() -> int:
    """How many sweep programs (simulation and statistics) have been traced (= compiled)."""
    return sum(_TRACES.values())


def trace_counts() -> dict[str, int]:
    """``{"simulation": n, "statistics": m}``: programs traced so far in this process."""
    return dict(_TRACES)


@jax.jit
def _cell_keys(root, ids):
    """``fold_in(root, cell_id)`` for each id (cells,)."""
    return jax.vmap(lambda i: jax.random.fold_in(root, i))(ids)


def _sharded(fn, kind: str, devices, n_args: int):
    """Jit ``fn`` over a cell axis sharded on ``devices``; each device loops over its cells
    (``lax.map``), so a cell's computation is the same loop body whatever the batch size or
    device count (a vmap over cells lets XLA fuse reductions differently for different batch
    sizes, changing the last bits)."""
    mesh = Mesh(np.asarray(devices), ("cells",))
    shard = NamedSharding(mesh, P("cells"))

    def local(*args):  # this device's cells, one at a time
        return jax.lax.map(lambda a: fn(*a), args)

    def program(*args):
        _TRACES[kind] += 1  # Python side effect: runs once per trace
        spec = P("cells")
        return jax.shard_map(local, mesh=mesh, in_specs=(spec,) * n_args, out_specs=spec)(*args)

    return jax.jit(program, in_shardings=(shard,) * n_args, out_shardings=shard), shard


@functools.lru_cache(maxsize=128)
def _simulation_program(simulate, static, games, dtype, devices, n_traced):
    """Jitted ``(cell_keys (C,), *traced (C,)) -> sim_out (C, ...)`` over ``devices``."""
    return _sharded(simulate(static, games, dtype), "simulation", devices, 1 + n_traced)


@functools.lru_cache(maxsize=32)
def _statistics_program(statistics, devices):
    """Jitted ``(cell_keys (C,), sim_out (C, ...)) -> {name: (C, ...)}`` over ``devices``;
    one compile per shape of ``sim_out``."""
    return _sharded(statistics, "statistics", devices, 2)


def _group_cells(cells, static_fields) -> list[tuple[tuple, list]]:
    """``[(static values, [cells])]`` in order of first appearance."""
    groups: dict[tuple, list] = {}
    for cid, config, seed in cells:
        static = tuple(getattr(config, f) for f in static_fields)
        groups.setdefault(static, []).append((cid, config, seed))
    return list(groups.items())


def _merge_groups(group_items, runner, games) -> list[tuple[tuple, list]]:
    """Groups of cells sharing a simulation program: ``runner.bucket``'s ``sim_static`` (or the
    static values themselves), in order of first appearance."""
    if runner.bucket is None:
        return group_items
    sim_of = runner.bucket([(static, len(members)) for static, members in group_items], games)
    merged: dict[tuple, list] = {}
    for static, members in group_items:
        merged.setdefault(tuple(sim_of[static]), []).extend(members)
    return list(merged.items())


def _plan(group_items, runner, games, dt, budget, chunk_cells, n_dev):
    """``[(group index, sim static, cells, chunk size)]``: deterministic for this spec, budget
    and device count."""
    plan = []
    for gi, (sim_static, members) in enumerate(group_items):
        if chunk_cells is None:
            statics = {_static(runner, m) for m in members}
            per = max(runner.bytes_per_cell(st, games, dt) for st in statics)
            if per * n_dev > budget:
                warnings.warn(
                    f"one cell of shape {max(statics)} needs ~{per} bytes per device, over "
                    f"memory_budget_bytes={budget}; running one cell per device at a time",
                    stacklevel=3,
                )
            c = max(1, budget // per)
        else:
            c = chunk_cells
        c = min(c, len(members))
        c = max(n_dev, (c // n_dev) * n_dev) if c >= n_dev else n_dev
        for start in range(0, len(members), c):
            plan.append((gi, sim_static, members[start : start + c], c))
    return plan


def _static(runner, member) -> tuple:
    return tuple(getattr(member[1], f) for f in runner.static_fields)


def _score(stats_fn, root, ids, outs, devices) -> list[dict]:
    """``stats_fn`` on each cell's output (a list of pytrees of one shape), one cell per device
    per call; per-cell result dicts (NumPy), in order."""
    n_dev = len(devices)
    stats, shard = _statistics_program(stats_fn, devices)
    stacked = jax.tree.map(lambda *x: np.stack(x), *outs)
    res = []
    for start in range(0, len(outs), n_dev):
        sel = np.minimum(np.arange(start, start + n_dev), len(outs) - 1)  # pad: the last cell
        keys = jax.device_put(_cell_keys(root, jnp.asarray(ids[sel])), shard)
        batch = jax.tree.map(lambda x, sel=sel: jax.device_put(x[sel], shard), stacked)
        part = jax.tree.map(np.asarray, stats(keys, batch))
        res += [{k: v[i] for k, v in part.items()} for i in range(min(n_dev, len(outs) - start))]
    return res


def _run_chunk(runner, root, sim_static, todo, c, games, dt, devices) -> dict[str, np.ndarray]:
    """Simulate ``todo`` (padded to ``c`` cells), then score it one cell per device per call
    (cells grouped by the shape of their trimmed output); returns ``{name: (len(todo), ...)}``
    on the host."""
    extra = []
    if runner.bucket is not None:
        rows = [runner.static_args(_static(runner, m), dt) for m in todo]
        pad_rows = [rows[0]] * (c - len(todo))
        extra = [np.array([r[j] for r in rows + pad_rows]) for j in range(len(rows[0]))]
    n_extra = len(extra)
    sim, shard = _simulation_program(
        runner.simulate, sim_static, games, dt, devices, len(runner.traced_fields) + n_extra
    )
    pad = c - len(todo)
    padded = list(todo) + [todo[0]] * pad
    ids = np.array([m[0] for m in padded], np.uint32)
    traced = [np.array([getattr(m[1], f) for m in padded]) for f in runner.traced_fields]
    args = [jax.device_put(_cell_keys(root, jnp.asarray(ids)), shard)]
    args += [jax.device_put(jnp.asarray(a, dt), shard) for a in traced]
    for a in extra:
        a = jnp.asarray(a, jnp.int32 if a.dtype.kind in "iu" else dt)
        args.append(jax.device_put(a, shard))
    sim_out = jax.tree.map(lambda x: np.asarray(x)[: len(todo)], sim(*args))

    outs = [jax.tree.map(lambda x, i=i: x[i], sim_out) for i in range(len(todo))]
    if runner.trim is not None:
        outs = [runner.trim(_static(runner, m), o) for m, o in zip(todo, outs, strict=True)]
    by_shape: dict[tuple, list[int]] = {}
    for i, o in enumerate(outs):
        by_shape.setdefault(tuple(np.shape(x) for x in jax.tree.leaves(o)), []).append(i)
    res: list[dict] = [{}] * len(todo)
    for idx in by_shape.values():
        first = _score(runner.statistics, root, ids[idx], [outs[i] for i in idx], devices)
        for i, r in zip(idx, first, strict=True):
            res[i] = r
        redo = [i for i in idx if not np.all(res[i].get("_ok", True))]
        if redo:
            fallback = runner.fallback_statistics
            if fallback is None:
                raise ValueError(
                    f"runner.statistics returned _ok=False for cells {list(ids[redo])} but "
                    "runner.fallback_statistics is None"
                )
            again = _score(fallback, root, ids[redo], [outs[i] for i in redo], devices)
            for i, r in zip(redo, again, strict=True):
                res[i] = r
    res = [{k: v for k, v in r.items() if k != "_ok"} for r in res]
    return {k: np.stack([r[k] for r in res]) for k in res[0]}


def run_sweep(
    spec,
    runner: CellRunner | None = None,
    out_dir: str | os.PathLike | None = None,
    *,
    dtype=None,
    memory_budget_bytes: int = 256 * 2**20,
    chunk_cells: int | None = None,
    devices: Sequence[jax.Device] | None = None,
    process_index: int = 0,
    process_count: int = 1,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Run (or resume, or load) a sweep; returns the result table {column: (rows,)}.

    Args:
      spec: the sweep (a :class:`SweepSpec`, or a spec of another game with the same methods).
      runner: the :class:`CellRunner`; ``None`` is ``gaussian_runner(spec)``.
      out_dir: output folder (chunks, sweep.npz/.json/.csv); ``None`` keeps everything in
        memory (no resume).
      dtype: float32 (default) or float64 (needs x64).
      memory_budget_bytes: per-chunk memory target; the chunk size is
        ``budget // bytes_per_cell`` rounded down to a multiple of the device count (>= it).
        Devices loop over their cells, so the live memory is about one cell per device; the
        bound is conservative. A cell larger than the budget warns and runs alone.
      chunk_cells: override the chunk size (rounded up to a multiple of the device count).
      devices: devices of the mesh (default ``jax.local_devices()``).
      process_index, process_count: run only chunks j with j % count == index (multi-host);
        with ``process_count > 1`` the table is not assembled (returns an empty dict).
      progress: tqdm bar over cells.

    Rows are the runner's (Gaussian game: (cell, adversary) in cell_id order, then
    ``spec.adversaries`` order).
    """
    if runner is None:
        runner = gaussian_runner(spec)
    if not isinstance(runner, CellRunner):
        raise ValueError(f"runner must be a CellRunner, got {runner!r}")
    if (runner.bucket is None) != (runner.static_args is None):
        raise ValueError(
            "runner.bucket and runner.static_args go together, got bucket="
            f"{runner.bucket!r}, static_args={runner.static_args!r}"
        )
    dt = check_dtype(dtype)
    budget = check_int("memory_budget_bytes", memory_budget_bytes, low=1)
    if chunk_cells is not None:
        chunk_cells = check_int("chunk_cells", chunk_cells, low=1)
    process_count = check_int("process_count", process_count, low=1)
    process_index = check_int("process_index", process_index, low=0, high=process_count - 1)
    devices = tuple(jax.local_devices() if devices is None else devices)
    if not devices:
        raise ValueError(f"devices must be non-empty, got {devices!r}")
    n_dev = len(devices)
    fp = spec.fingerprint(dt)

    out = None if out_dir is None else Path(out_dir)
    if out is not None:
        finished = store.open_out_dir(out, spec, fp, dt.name, writer=process_index == 0)
        if finished and process_count == 1:
            return store.load_sweep(out)
    chunk_dir = None if out is None else out / "chunks"
    done = store.load_chunks(chunk_dir)

    cells = spec.cells()
    group_items = _merge_groups(_group_cells(cells, runner.static_fields), runner, spec.games)
    plan = _plan(group_items, runner, spec.games, dt, budget, chunk_cells, n_dev)
    mine = [p for j, p in enumerate(plan) if j % process_count == process_index]
    todo_cells = sum(1 for p in mine for m in p[2] if m[0] not in done)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=todo_cells, desc="sweep cells", unit="cell")
    root = jax.random.key(spec.root_seed)
    t0 = time.perf_counter()
    for gi, sim_static, members, c in mine:
        todo = [m for m in members if m[0] not in done]
        if not todo:
            continue
        res = _run_chunk(runner, root, sim_static, todo, c, spec.games, dt, devices)
        for i, m in enumerate(todo):
            done[m[0]] = {k: v[i] for k, v in res.items()}
        if chunk_dir is not None:
            store.write_chunk(chunk_dir, gi, [m[0] for m in todo], res)
        if bar is not None:
            bar.update(len(todo))
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - t0
    if process_count > 1:
        return {}

    missing = [cid for cid, _, _ in cells if cid not in done]
    if missing:
        raise RuntimeError(f"cells {missing[:5]}... have no results; re-run the sweep")
    table = runner.table(spec, cells, [done[cid] for cid, _, _ in cells])
    if out is not None:
        meta = results.run_metadata(
            config=spec,
            seed=spec.root_seed,
            dtype=dt.name,
            num_local_devices=n_dev,
            elapsed_s=elapsed,
            sweep_fingerprint=fp,
        )
        store.write_table(out, spec, table, runner.columns, meta)
    return table
