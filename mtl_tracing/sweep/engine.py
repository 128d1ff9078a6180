"""Vectorised, device-sharded, resumable parameter sweeps of the Gaussian tracing game.

A :class:`SweepSpec` is a product of value lists for the config fields (notation as in
:mod:`mtl_tracing.config`: T ``tasks``, N ``samples``, d ``dim``, k ``challenge``, sbar
``task_std``, s ``sample_std``, mu_bar ``mean`` (scalar)) times ``seeds``, with G ``games`` per
cell. A *cell* is one (config, seed); the strong and weak adversaries are scored on the same
simulated games, so each cell is simulated once and reported as one row per adversary.

Engine
  * Cells sharing a static shape (T, N, d, k) form a group; each group runs as ONE jitted
    program over chunks of cells (sbar, s, mu_bar and keys are traced; the G games of a cell
    are vmapped, cells are a ``lax.map`` loop per device), in fixed-size chunks (the last one
    padded), so a sweep compiles once per shape.
  * Keys: cell ``cell_id`` (its index in the canonical product order of the *full* spec:
    tasks, samples, dim, challenge, task_std, sample_std, mean, seed, last fastest) uses
    ``cell_key = fold_in(key(root_seed), cell_id)``; game g uses ``fold_in(cell_key, g)`` (the
    same as ``game.simulate(cell_key, config, games=G)``). Results are bitwise identical
    whatever the chunk size, order or device count.
  * Sharding: the cell axis of each chunk is sharded over a ``Mesh`` of all local devices
    (``NamedSharding(mesh, P("cells"))``); chunks are padded to a multiple of the device count.
  * Memory: the chunk size comes from ``memory_budget_bytes`` / :func:`bytes_per_cell`.
  * Resume: each finished chunk is written atomically to ``out_dir/chunks/``; a re-run with the
    same spec skips finished cells, and a finished sweep is served from ``out_dir/sweep.npz``.

Per cell and IN adversary (statistics pool the G*T scores; SEs are over games because the
scores of one game share mu_hat): mean and variance of z for IN and OUT with SEs (variance SE
by the delta method on per-game moments; computed on the host in float64 from the per-game
moments the compiled program returns), the pooled AUC with a percentile CI from a paired
game bootstrap, the TPR at ``fpr`` (1%) with a bootstrap CI, and beside them the exact theory:
``theory_*`` moments (E z = d c, Var z = d (AB + c^2)), the paper's Thm 4.3 variance, the
normal-approximation and exact-law (marginal) AUC and TPR, computed for all cells at once by
``gaussian.roc_theory`` (one vectorised call per adversary when the table is assembled).

Output format (``out_dir``):
  * ``sweep.npz``: one array per column, one entry per row (cell, adversary); strings are
    NumPy unicode arrays, so ``np.load(path)`` works without pickle.
  * ``sweep.json``: ``{"format": "mtl-tracing-sweep/1", "spec": ..., "metadata":
    results.run_metadata(...), "columns": {name: description}, "rows": n}``.
  * ``sweep.csv``: the same table with a header row.
  * ``chunks/``: per-chunk partial results (``chunk-<group>-<first cell>.npz``) for resuming.
Load with :func:`load_sweep`.

Multi-host: call ``jax.distributed.initialize(coordinator_address, num_processes,
process_id)`` before :func:`run_sweep`, pass ``process_index``/``process_count``: each process
runs the chunks ``j`` with ``j % process_count == process_index`` on its local devices and
writes their chunk files to the shared ``out_dir``; process 0 then calls :func:`run_sweep`
again (``process_count=1``) which finds every chunk on disk and assembles the table. See
``simulations/multihost_sweep_example.py``.

A second cell runner (e.g. the synthetic-MTL model of App. A.8) plugs in through
:class:`CellRunner`: static shape fields, traced fields and a per-cell function of a key.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from mtl_tracing import metrics, results
from mtl_tracing._validate import (
    check_choice,
    check_dtype,
    check_finite_float,
    check_int,
    check_probability,
)
from mtl_tracing.gaussian.config import GameShape, GaussianGameConfig

__all__ = [
    "ADVERSARIES",
    "CONFIG_FIELDS",
    "SHAPE_FIELDS",
    "TRACED_FIELDS",
    "COLUMNS",
    "SweepSpec",
    "CellRunner",
    "gaussian_runner",
    "bytes_per_cell",
    "cell_table",
    "run_sweep",
    "load_sweep",
    "trace_count",
]

FORMAT = "mtl-tracing-sweep/1"
ADVERSARIES = ("strong", "weak")
CONFIG_FIELDS = ("tasks", "samples", "dim", "challenge", "task_std", "sample_std", "mean")
SHAPE_FIELDS = ("tasks", "samples", "dim", "challenge")
TRACED_FIELDS = ("task_std", "sample_std", "mean")

# Per-cell metric arrays produced by the compiled program, per IN adversary (prefix) or OUT.
_IN_METRICS = (
    "mean_in",
    "mean_in_se",
    "var_in",
    "var_in_se",
    "auc",
    "auc_lo",
    "auc_hi",
    "tpr",
    "tpr_lo",
    "tpr_hi",
)
_OUT_METRICS = ("mean_out", "mean_out_se", "var_out", "var_out_se")

COLUMNS: dict[str, str] = {
    "cell_id": "index of (config, seed) in the canonical product order of the full spec",
    "seed": "seed of the cell (its key is fold_in(key(root_seed), cell_id))",
    "adversary": "IN adversary: strong (B from the training samples) or weak (fresh samples)",
    "tasks": "T, IN tasks in the release mu_hat",
    "samples": "N, training samples per task",
    "dim": "d, data dimension",
    "challenge": "k, challenge batch size",
    "task_std": "sbar, std of task means",
    "sample_std": "s, std of samples",
    "mean": "mu_bar, global mean (scalar)",
    "games": "G, games in the cell (each yields T IN and T OUT scores)",
    "mean_in": "empirical mean of z_IN (pooled over G*T scores)",
    "mean_in_se": "standard error of mean_in over games",
    "var_in": "empirical variance of z_IN (pooled)",
    "var_in_se": "standard error of var_in over games (delta method)",
    "mean_out": "empirical mean of z_OUT",
    "mean_out_se": "standard error of mean_out over games",
    "var_out": "empirical variance of z_OUT",
    "var_out_se": "standard error of var_out over games (delta method)",
    "auc": "pooled empirical AUC of IN vs OUT scores (ties count 1/2)",
    "auc_lo": "lower end of the percentile CI of auc (paired game bootstrap)",
    "auc_hi": "upper end of the percentile CI of auc",
    "tpr": "empirical TPR at the target FPR (threshold with realised FPR <= target)",
    "tpr_lo": "lower end of the percentile CI of tpr (paired game bootstrap)",
    "tpr_hi": "upper end of the percentile CI of tpr",
    "fpr": "target FPR of tpr",
    "level": "confidence level of the CIs",
    "theory_mean_in": "exact E z_IN = d c",
    "theory_var_in": "exact Var z_IN = d (A B + c^2)",
    "theory_mean_out": "exact E z_OUT = 0",
    "theory_var_out": "exact Var z_OUT = d A B",
    "paper_var": "the paper's Thm 4.3 variance d/T [sbar^4 + s^4/(kN) + (k+N)/(kN) sbar^2 s^2]",
    "normal_auc": "normal-approximation AUC with the exact moments",
    "exact_auc": "exact-law marginal AUC (z = a X - b Y; Imhof's formula on fixed quadrature "
    "nodes, gaussian.roc_theory, vectorised over cells; absolute error ~1e-13)",
    "normal_tpr": "normal-approximation TPR at fpr",
    "exact_tpr": "exact-law marginal TPR at fpr (gaussian.roc_theory, fixed-node quadrature "
    "vectorised over cells; absolute error ~1e-14, relative ~1e-12)",
}

_TRACES = {"count": 0}
_BOOT_BATCH = 4  # bootstrap resamples evaluated in parallel inside a cell


def trace_count() -> int:
    """How many times a sweep chunk program has been traced (= compiled) in this process."""
    return _TRACES["count"]


# --------------------------------------------------------------------------------------------
# Spec.


def _as_tuple(name: str, values: Any) -> tuple:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
        values = (values,)
    values = tuple(values)
    if not values:
        raise ValueError(f"{name} must be a non-empty list, got {values!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"{name} must not contain duplicates, got {values!r}")
    return values


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A sweep: the product of the value lists times ``seeds``, with ``games`` per cell.

    Fields are tuples of values (a scalar is accepted as a one-element list). ``mean`` values
    are scalars mu_bar. Validated on construction; errors name the field and the value.
    """

    tasks: tuple[int, ...] = (256,)
    samples: tuple[int, ...] = (8,)
    dim: tuple[int, ...] = (256,)
    challenge: tuple[int, ...] = (4,)
    task_std: tuple[float, ...] = (1.0,)
    sample_std: tuple[float, ...] = (1.0,)
    mean: tuple[float, ...] = (0.0,)
    seeds: tuple[int, ...] = (0,)
    games: int = 500
    adversaries: tuple[str, ...] = ADVERSARIES
    sampler: str = "sufficient"
    fpr: float = 0.01
    level: float = 0.95
    num_resamples: int = 200
    root_seed: int = 0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("tasks", "samples", "dim", "challenge"):
            vals = _as_tuple(name, getattr(self, name))
            set_(self, name, tuple(check_int(name, v, low=1) for v in vals))
        for name in ("task_std", "sample_std"):
            vals = _as_tuple(name, getattr(self, name))
            vals = tuple(check_finite_float(name, v) for v in vals)
            for v in vals:
                if v <= 0.0:
                    raise ValueError(f"{name} must be > 0, got {v!r}")
            set_(self, name, vals)
        means = _as_tuple("mean", self.mean)
        set_(self, "mean", tuple(check_finite_float("mean", v) for v in means))
        seeds = _as_tuple("seeds", self.seeds)
        set_(self, "seeds", tuple(check_int("seeds", v, low=0, high=2**32 - 1) for v in seeds))
        if max(self.challenge) > min(self.samples):
            raise ValueError(
                "challenge must be <= samples (k <= N) for every combination, got "
                f"challenge={max(self.challenge)} > samples={min(self.samples)}"
            )
        set_(self, "games", check_int("games", self.games, low=2))
        advs = _as_tuple("adversaries", self.adversaries)
        set_(self, "adversaries", tuple(check_choice("adversaries", a, ADVERSARIES) for a in advs))
        check_choice("sampler", self.sampler, ("sufficient", "faithful"))
        set_(self, "fpr", check_probability("fpr", self.fpr))
        set_(self, "level", check_probability("level", self.level))
        set_(self, "num_resamples", check_int("num_resamples", self.num_resamples, low=2))
        set_(self, "root_seed", check_int("root_seed", self.root_seed, low=0, high=2**32 - 1))

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> SweepSpec:
        return cls(**d)

    def fingerprint(self, dtype) -> str:
        """Hash of everything that determines the numbers (spec and dtype)."""
        payload = json.dumps(
            {"spec": results.to_jsonable(self.to_dict()), "dtype": jnp.dtype(dtype).name},
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def num_cells(self) -> int:
        return math.prod(len(getattr(self, f)) for f in CONFIG_FIELDS) * len(self.seeds)

    def cells(self) -> list[tuple[int, GaussianGameConfig, int]]:
        """``[(cell_id, config, seed)]`` in canonical order (product, last field fastest)."""
        lists = [getattr(self, f) for f in CONFIG_FIELDS] + [self.seeds]
        out = []
        for cell_id, values in enumerate(itertools.product(*lists)):
            config = GaussianGameConfig(**dict(zip(CONFIG_FIELDS, values[:-1], strict=True)))
            out.append((cell_id, config, values[-1]))
        return out

    def swept_fields(self) -> list[str]:
        """Config fields with more than one value (plus ``seeds`` if several)."""
        return [f for f in CONFIG_FIELDS if len(getattr(self, f)) > 1]


def cell_table(spec: SweepSpec) -> dict[str, np.ndarray]:
    """The cell table: ``cell_id``, ``seed`` and one column per config field, (cells,) each."""
    rows = spec.cells()
    table = {"cell_id": np.array([r[0] for r in rows], np.int64)}
    table["seed"] = np.array([r[2] for r in rows], np.int64)
    for f in CONFIG_FIELDS:
        dt = np.int64 if f in SHAPE_FIELDS else np.float64
        table[f] = np.array([getattr(r[1], f) for r in rows], dt)
    return table


# --------------------------------------------------------------------------------------------
# Per-cell statistics (JAX; static shapes).


def _moments(m_g: np.ndarray, q_g: np.ndarray, per_game) -> tuple[np.ndarray, ...]:
    """Pooled mean/var of z with SEs over games, from per-game moments (host, float64).

    ``m_g``, ``q_g`` (..., G) are each game's mean of z and of z^2 over its ``per_game`` = T
    scores (broadcast against the leading axes). Returns (mean, se, var, se), each (...,); the
    variance SE is the delta method on (q - m^2). Computed on the host so the numbers do not
    depend on how XLA fuses a chunk.
    """
    m_g = np.asarray(m_g, np.float64)
    q_g = np.asarray(q_g, np.float64)
    games = m_g.shape[-1]
    m = m_g.mean(axis=-1)
    q = q_g.mean(axis=-1)
    n = games * np.asarray(per_game, np.float64)
    var = (q - m * m) * (n / (n - 1))
    m_se = m_g.std(axis=-1, ddof=1) / math.sqrt(games)
    infl = q_g - 2.0 * m[..., None] * m_g  # influence of game g on q - m^2
    v_se = infl.std(axis=-1, ddof=1) / math.sqrt(games)
    return m, m_se, var, v_se


def _roc_stats(key, s_in, s_out, *, fpr: float, num_resamples: int, level: float):
    """Pooled AUC and TPR at ``fpr`` of s_in vs s_out (G, T) with paired game-bootstrap CIs.

    Traceable; one :func:`metrics.grouped_bootstrap` for both statistics (shared replicates;
    G^2 <= ``metrics._PAIR_LIMIT`` takes the group-pair path: all replicates from one G x G
    pair-count matrix). Returns (auc, auc_lo, auc_hi, tpr, tpr_lo, tpr_hi).
    """
    auc, tpr = metrics.grouped_bootstrap(
        key,
        (metrics.auc, metrics.TprAtFprStatistic(fpr)),
        s_in,
        s_out,
        num_resamples=num_resamples,
        level=level,
        paired=True,
        chunk=min(_BOOT_BATCH, num_resamples),
    )
    return auc.estimate, auc.low, auc.high, tpr.estimate, tpr.low, tpr.high


# --------------------------------------------------------------------------------------------
# Cell runners.


@dataclasses.dataclass(frozen=True)
class CellRunner:
    """A pluggable per-cell model.

    ``make(static, games, dtype)`` returns a pure ``f(cell_key, *traced) -> dict[str, scalar]``
    where ``static`` is the tuple of ``static_fields`` values and ``traced`` the scalar values
    of ``traced_fields`` (``dtype`` arrays); ``bytes_per_cell(static, games, dtype)`` is its
    memory estimate. The engine vmaps ``f`` over cells, shards it and chunks it.
    """

    name: str
    static_fields: tuple[str, ...]
    traced_fields: tuple[str, ...]
    make: Callable[..., Callable]
    bytes_per_cell: Callable[..., int]
    metric_names: tuple[str, ...]


def bytes_per_cell(spec: SweepSpec, shape: GameShape, dtype=jnp.float32) -> int:
    """Memory estimate for one cell of ``shape``: games, pooled sorts and bootstrap batches."""
    from mtl_tracing.gaussian.game import bytes_per_game

    item = jnp.dtype(dtype).itemsize
    n = spec.games * shape.tasks  # scores per class
    games_b = spec.games * bytes_per_game(spec.sampler, shape, dtype)
    # 3 score sets + sorts, indices, cumsums (~16 n words) + parallel resamples x 8 n words.
    word = max(item, 4)
    stats_b = 16 * n * word + min(_BOOT_BATCH, spec.num_resamples) * 8 * n * word
    if spec.games**2 <= metrics._PAIR_LIMIT and 2 * n <= metrics._PAIR_MAX_SCORES:
        window = math.ceil(4 * spec.fpr * n) + 4 * shape.tasks + 64  # metrics._pair_path
        stats_b += (2 * n) * 16 * 4  # within-block pair indices (int32)
        stats_b += (spec.games + spec.num_resamples + 1) * window * word
    return int(games_b + stats_b + 4096)


def gaussian_runner(spec: SweepSpec) -> CellRunner:
    """The Gaussian-game runner (``game.game_kernel``) with the statistics of this module.

    Cached on the fields that change the program, so sweeps that differ only in values of
    traced fields, seeds or lists reuse compiled chunk programs.
    """
    return _gaussian_runner(
        spec.sampler, spec.adversaries, spec.fpr, spec.level, spec.num_resamples
    )


@functools.lru_cache(maxsize=64)
def _gaussian_runner(sampler, advs, fpr, level, num_resamples) -> CellRunner:
    stat_spec = SweepSpec(
        sampler=sampler, adversaries=advs, fpr=fpr, level=level, num_resamples=num_resamples
    )

    def make(static, games, dtype):
        from mtl_tracing.gaussian.game import game_kernel

        shape = GameShape(*static)
        kernel = game_kernel(sampler, shape, dtype)

        def cell(cell_key, task_std, sample_std, mean):
            g = jnp.arange(games, dtype=jnp.uint32)
            keys = jax.vmap(lambda i: jax.random.fold_in(cell_key, i))(g)
            strong, weak, out = jax.vmap(kernel, in_axes=(0, None, None, None))(
                keys, task_std, sample_std, mean
            )
            res = {"out/m_g": jnp.mean(out, axis=1), "out/q_g": jnp.mean(out * out, axis=1)}
            boot_key = jax.random.fold_in(cell_key, 2**31)  # never a game index (G < 2^31)
            z_in = jnp.stack([{"strong": strong, "weak": weak}[a] for a in advs])  # (A, G, T)
            m_g = jnp.mean(z_in, axis=2)  # (A, G)
            q_g = jnp.mean(z_in * z_in, axis=2)
            # lax.map, not vmap: the bootstrap's fallback stays a real branch (under vmap
            # lax.cond runs both paths), and its code is compiled once for all adversaries.
            roc = jax.lax.map(
                lambda z: _roc_stats(
                    boot_key, z, out, fpr=fpr, num_resamples=num_resamples, level=level
                ),
                z_in,
            )
            for i, adv in enumerate(advs):
                res[f"{adv}/m_g"] = m_g[i]
                res[f"{adv}/q_g"] = q_g[i]
                for name, v in zip(_IN_METRICS[4:], roc, strict=True):
                    res[f"{adv}/{name}"] = v[i]
            return res

        return cell

    names = ("out/m_g", "out/q_g") + tuple(
        f"{a}/{m}" for a in advs for m in ("m_g", "q_g") + _IN_METRICS[4:]
    )
    return CellRunner(
        name="gaussian",
        static_fields=SHAPE_FIELDS,
        traced_fields=TRACED_FIELDS,
        make=make,
        bytes_per_cell=lambda static, games, dtype: bytes_per_cell(
            dataclasses.replace(stat_spec, games=games), GameShape(*static), dtype
        ),
        metric_names=names,
    )


@jax.jit
def _cell_keys(root, ids):
    """``fold_in(root, cell_id)`` for each id (cells,)."""
    return jax.vmap(lambda i: jax.random.fold_in(root, i))(ids)


@functools.lru_cache(maxsize=128)
def _chunk_program(runner: CellRunner, static, games, dtype, chunk, devices):
    """Jitted ``(cell_keys (C,), *traced (C,)) -> {metric: (C, ...)}`` sharded over ``devices``.

    Each device loops (``lax.map``) over its cells; inside a cell the G games are vmapped. The
    per-cell computation is thus the same compiled loop body whatever the chunk size or device
    count, which is what makes results bitwise invariant (a vmap over cells lets XLA fuse
    reductions differently for different batch sizes, changing the last bits).
    """
    cell = runner.make(static, games, dtype)
    mesh = Mesh(np.asarray(devices), ("cells",))
    shard = NamedSharding(mesh, P("cells"))
    n_in = 1 + len(runner.traced_fields)

    def local(cell_keys, *traced):  # this device's cells, one at a time
        return jax.lax.map(lambda args: cell(*args), (cell_keys, *traced))

    def program(cell_keys, *traced):
        _TRACES["count"] += 1  # Python side effect: runs once per trace
        spec = P("cells")
        return jax.shard_map(local, mesh=mesh, in_specs=(spec,) * n_in, out_specs=spec)(
            cell_keys, *traced
        )

    return jax.jit(program, in_shardings=(shard,) * n_in, out_shardings=shard), shard


# --------------------------------------------------------------------------------------------
# Theory.


def _theory_columns(spec: SweepSpec, cells) -> dict[str, dict[str, np.ndarray]]:
    """``{adversary: {theory column: (cells,)}}``: one vectorised ``gaussian.roc_theory`` call per
    adversary over all cells (no cache: each assembled table computes its theory once)."""
    from mtl_tracing import gaussian

    fields = ("tasks", "samples", "dim", "challenge", "task_std", "sample_std")
    args = {f: np.array([getattr(config, f) for _, config, _ in cells]) for f in fields}
    return {
        adv: gaussian.roc_theory(**args, adversary=adv, fpr=spec.fpr) for adv in spec.adversaries
    }


# --------------------------------------------------------------------------------------------
# Driver.


def _atomic_savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _load_chunks(chunk_dir: Path) -> dict[int, dict[str, np.ndarray]]:
    done: dict[int, dict[str, np.ndarray]] = {}
    if not chunk_dir.is_dir():
        return done
    for f in sorted(chunk_dir.glob("chunk-*.npz")):
        if f.name.endswith(".tmp.npz"):
            continue
        with np.load(f, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        for i, cid in enumerate(data.pop("cell_id").tolist()):
            done[int(cid)] = {k: v[i] for k, v in data.items()}
    return done


def run_sweep(
    spec: SweepSpec,
    out_dir: str | os.PathLike | None = None,
    *,
    dtype=None,
    memory_budget_bytes: int = 256 * 2**20,
    chunk_cells: int | None = None,
    devices: Sequence[jax.Device] | None = None,
    order: Sequence[int] | None = None,
    process_index: int = 0,
    process_count: int = 1,
    progress: bool = True,
    _fail_after_chunks: int | None = None,
) -> dict[str, np.ndarray]:
    """Run (or resume, or load) a sweep; returns the result table {column: (rows,)}.

    Args:
      spec: the sweep.
      out_dir: output folder (chunks, sweep.npz/.json/.csv); ``None`` keeps everything in
        memory (no resume).
      dtype: float32 (default) or float64 (needs x64).
      memory_budget_bytes: per-chunk memory target; the chunk size is
        ``budget // bytes_per_cell`` rounded down to a multiple of the device count (>= it).
        Devices loop over their cells, so the live memory is about one cell per device; the
        bound is conservative. A cell larger than the budget warns and runs alone.
      chunk_cells: override the chunk size (rounded up to a multiple of the device count).
      devices: devices of the mesh (default ``jax.local_devices()``).
      order: optional permutation of the group indices (testing order invariance).
      process_index, process_count: run only chunks j with j % count == index (multi-host);
        with ``process_count > 1`` the table is not assembled (returns an empty dict).
      progress: tqdm bar over cells.

    Rows are (cell, adversary) in cell_id order then ``spec.adversaries`` order.
    """
    if not isinstance(spec, SweepSpec):
        raise ValueError(f"spec must be a SweepSpec, got {spec!r}")
    dt = check_dtype(dtype)
    budget = check_int("memory_budget_bytes", memory_budget_bytes, low=1)
    process_count = check_int("process_count", process_count, low=1)
    process_index = check_int("process_index", process_index, low=0, high=process_count - 1)
    devices = tuple(jax.local_devices() if devices is None else devices)
    if not devices:
        raise ValueError(f"devices must be non-empty, got {devices!r}")
    n_dev = len(devices)
    fp = spec.fingerprint(dt)

    out = None if out_dir is None else Path(out_dir)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        spec_file = out / "spec.json"
        if spec_file.exists():
            old = results.read_json(spec_file)
            if old.get("fingerprint") != fp:
                raise ValueError(
                    f"out_dir {str(out)!r} holds a different sweep (fingerprint "
                    f"{old.get('fingerprint')!r}, this one {fp!r}); use a new folder"
                )
            if (out / "sweep.npz").exists() and process_count == 1:
                return load_sweep(out)
        elif process_index == 0:  # one writer
            results.write_json(
                spec_file, {"fingerprint": fp, "dtype": dt.name, "spec": spec.to_dict()}
            )
    chunk_dir = None if out is None else out / "chunks"
    done = {} if chunk_dir is None else _load_chunks(chunk_dir)

    cells = spec.cells()
    runner = gaussian_runner(spec)
    groups: dict[tuple, list] = {}
    for cid, config, seed in cells:
        groups.setdefault(tuple(getattr(config, f) for f in runner.static_fields), []).append(
            (cid, config, seed)
        )
    group_items = list(groups.items())
    if order is not None:
        group_items = [group_items[i] for i in order]

    # Plan chunks (deterministic for this spec, budget and device count).
    plan = []
    for gi, (static, members) in enumerate(group_items):
        per = runner.bytes_per_cell(static, spec.games, dt)
        if chunk_cells is None:
            if per * n_dev > budget:
                warnings.warn(
                    f"one cell of shape {static} needs ~{per} bytes per device, over "
                    f"memory_budget_bytes={budget}; running one cell per device at a time",
                    stacklevel=2,
                )
            c = max(1, budget // per)
        else:
            c = check_int("chunk_cells", chunk_cells, low=1)
        c = min(c, len(members))
        c = max(n_dev, (c // n_dev) * n_dev) if c >= n_dev else n_dev
        for start in range(0, len(members), c):
            plan.append((gi, static, members[start : start + c], c))
    mine = [p for j, p in enumerate(plan) if j % process_count == process_index]
    todo_cells = sum(1 for p in mine for m in p[2] if m[0] not in done)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=todo_cells, desc="sweep cells", unit="cell")
    root = jax.random.key(spec.root_seed)
    finished = 0
    t0 = time.perf_counter()
    for gi, static, members, c in mine:
        todo = [m for m in members if m[0] not in done]
        if not todo:
            continue
        program, shard = _chunk_program(runner, static, spec.games, dt, c, devices)
        pad = c - len(todo)
        ids = np.array([m[0] for m in todo] + [todo[0][0]] * pad, np.uint32)
        keys = _cell_keys(root, jnp.asarray(ids))
        traced = [
            np.array([getattr(m[1], f) for m in todo] + [getattr(todo[0][1], f)] * pad)
            for f in runner.traced_fields
        ]
        args = [jax.device_put(keys, shard)] + [
            jax.device_put(jnp.asarray(a, dt), shard) for a in traced
        ]
        res = program(*args)
        res = {k: np.asarray(v)[: len(todo)] for k, v in res.items()}
        for i, m in enumerate(todo):
            done[m[0]] = {k: v[i] for k, v in res.items()}
        if chunk_dir is not None:
            chunk_dir.mkdir(parents=True, exist_ok=True)
            arrays = {"cell_id": np.array([m[0] for m in todo], np.int64)}
            arrays.update({k.replace("/", "__"): v for k, v in res.items()})
            _atomic_savez(chunk_dir / f"chunk-{gi:04d}-{todo[0][0]:08d}.npz", arrays)
        finished += 1
        if bar is not None:
            bar.update(len(todo))
        if _fail_after_chunks is not None and finished >= _fail_after_chunks:
            raise RuntimeError(f"injected failure after {finished} chunk(s) (test hook)")
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - t0
    if process_count > 1:
        return {}

    table = _assemble(spec, cells, done)
    if out is not None:
        _write_table(out, spec, table, dt, elapsed, n_dev)
    return table


def _assemble(spec, cells, done) -> dict[str, np.ndarray]:
    """The result table, one row per (cell, adversary), cell-major; vectorised over cells."""
    missing = [cid for cid, _, _ in cells if cid not in done]
    if missing:
        raise RuntimeError(f"cells {missing[:5]}... have no results; re-run the sweep")
    advs = spec.adversaries
    n_adv = len(advs)
    res = [{k.replace("__", "/"): v for k, v in done[cid].items()} for cid, _, _ in cells]

    def stacked(name):  # (cells, ...) of one per-cell result
        return np.stack([r[name] for r in res])

    def per_row(x):  # (cells,) -> (rows,), each cell repeated for its adversaries
        return np.repeat(np.asarray(x), n_adv, axis=0)

    def interleave(by_adv):  # {adv: (cells, ...)} -> (rows, ...) in row order
        return np.stack([by_adv[a] for a in advs], axis=1).reshape(-1, *by_adv[advs[0]].shape[1:])

    tasks = np.array([c.tasks for _, c, _ in cells], np.float64)
    table = {
        "cell_id": per_row(np.array([cid for cid, _, _ in cells], np.int64)),
        "seed": per_row(np.array([seed for _, _, seed in cells], np.int64)),
        "adversary": np.array(list(advs) * len(cells), dtype="<U6"),
    }
    for f in CONFIG_FIELDS:
        dt = np.int64 if f in SHAPE_FIELDS else np.float64
        table[f] = per_row(np.array([getattr(c, f) for _, c, _ in cells], dt))
    table["games"] = np.full(len(cells) * n_adv, spec.games, np.int64)
    mom_in = {a: _moments(stacked(f"{a}/m_g"), stacked(f"{a}/q_g"), tasks) for a in advs}
    mom_out = _moments(stacked("out/m_g"), stacked("out/q_g"), tasks)
    for j, name in enumerate(_IN_METRICS[:4]):
        table[name] = interleave({a: mom_in[a][j] for a in advs})
    for j, name in enumerate(_OUT_METRICS):
        table[name] = per_row(mom_out[j])
    for name in _IN_METRICS[4:]:  # ROC metrics keep the simulation dtype
        table[name] = interleave({a: stacked(f"{a}/{name}") for a in advs})
    table["fpr"] = np.full(len(cells) * n_adv, spec.fpr, np.float64)
    table["level"] = np.full(len(cells) * n_adv, spec.level, np.float64)
    theory_cols = _theory_columns(spec, cells)
    for k in theory_cols[advs[0]]:
        table[k] = interleave({a: np.asarray(theory_cols[a][k], np.float64) for a in advs})
    return {name: table[name] for name in COLUMNS}


def _write_table(out: Path, spec, table, dt, elapsed, n_dev) -> None:
    meta = results.run_metadata(
        config=spec,
        seed=spec.root_seed,
        dtype=dt.name,
        num_local_devices=n_dev,
        elapsed_s=elapsed,
        sweep_fingerprint=spec.fingerprint(dt),
    )
    results.write_json(
        out / "sweep.json",
        {
            "format": FORMAT,
            "spec": spec.to_dict(),
            "metadata": meta,
            "columns": COLUMNS,
            "rows": int(len(table["cell_id"])),
        },
    )
    tmp = out / "sweep.csv.tmp"
    names = list(table)
    with open(tmp, "w") as fh:
        fh.write(",".join(names) + "\n")
        for i in range(len(table["cell_id"])):
            fh.write(",".join(_csv(table[n][i]) for n in names) + "\n")
    os.replace(tmp, out / "sweep.csv")
    _atomic_savez(out / "sweep.npz", table)  # written last: marks the sweep finished


def _csv(v) -> str:
    if isinstance(v, np.floating):
        return repr(float(v))
    return str(v)


def load_sweep(out_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load ``out_dir/sweep.npz`` as {column: (rows,)} (NumPy only, no pickle)."""
    path = Path(out_dir) / "sweep.npz"
    if not path.exists():
        raise ValueError(f"out_dir {str(out_dir)!r} has no sweep.npz (sweep not finished?)")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
