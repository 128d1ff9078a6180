"""Benchmark of the sweep engine against a Python loop over cells (single-point API).

Measures, for a 48-cell sweep (4 shapes x 6 std values x 2 seeds): cells/s and games/s of
``sweep.run_sweep`` (cold, i.e. including compiles, and warm), the compile count, peak memory
(``ru_maxrss``), scaling over 1, 2 and 4 forced host devices (subprocesses), and the same sweep
as loops over cells: the public single-point API (``game.simulate``, ``metrics``, ``theory``)
with the bootstrap's default and with ``host=False``, and ``game.simulate`` plus the sweep's
own cell metrics jitted per cell; prints the ratios. Each of these rows runs in its own fresh
process with the persistent compilation cache off: cold = its first call, warm = its second.
Then the sweep as ``mtl-tracing sweep`` runs it (one host device per core) against the
public-API loop in one subprocess, and a small CLI sweep with an empty and with a filled
persistent compilation cache. Every sweep run recomputes its theory (nothing is cached
between runs).
It also times one compile against one cell's run time, the numbers behind padding T (the
simulation: one program for every T of this sweep) but not the statistics (one per (G, T)).

Usage: python benchmarks/bench_sweep.py [--games 200] [--devices 1,2,4]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

SPEC_KW = dict(
    tasks=(16, 64),
    dim=(64, 256),
    samples=(8,),
    challenge=(4,),
    task_std=(0.5, 1.0, 2.0),
    sample_std=(1.0, 2.0),
    seeds=(0, 1),
    num_resamples=100,
)


def _spec(games: int):
    from mtl_tracing import sweep

    return sweep.SweepSpec(games=games, **SPEC_KW)


def time_sweep(games: int) -> dict:
    """Cold and warm timings of the vectorised sweep in this process."""
    from mtl_tracing import sweep

    spec = _spec(games)
    runner = sweep.gaussian_runner(spec)
    c0 = sweep.trace_counts()
    t0 = time.perf_counter()
    sweep.run_sweep(spec, runner, progress=False)
    cold = time.perf_counter() - t0
    c1 = sweep.trace_counts()
    compiles = sum(c1.values()) - sum(c0.values())
    t0 = time.perf_counter()
    sweep.run_sweep(spec, runner, progress=False)
    warm = time.perf_counter() - t0
    n = spec.num_cells
    return {
        "cells": n,
        "compiles": compiles,
        "simulation_compiles": c1["simulation"] - c0["simulation"],
        "statistics_compiles": c1["statistics"] - c0["statistics"],
        "cold_s": cold,
        "warm_s": warm,
        "cells_per_s": n / warm,
        "games_per_s": n * games / warm,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _cold_warm(loop, cells: int) -> dict:
    """Wall seconds of a first (cold) and a second (warm) call of ``loop()``."""
    t0 = time.perf_counter()
    loop()
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    loop()
    warm = time.perf_counter() - t0
    return {"cold_s": cold, "warm_s": warm, "cells_per_s": cells / warm}


def time_loop(games: int) -> dict:
    """The same cells as a Python loop: game.simulate + the runner's statistics jitted per
    cell, and the moments from metrics.group_moments_from_sums."""
    import jax
    import jax.numpy as jnp

    from mtl_tracing import metrics, sweep
    from mtl_tracing.gaussian import game
    from mtl_tracing.metrics.bootstrap import paired_group_counts

    spec = _spec(games)
    runner = sweep.gaussian_runner(spec)
    root = jax.random.key(spec.root_seed)

    @jax.jit
    def stats(key, strong, weak, out):
        moments = {"out/m_g": out.mean(1), "out/q_g": (out * out).mean(1)}
        for name, z in (("strong", strong), ("weak", weak)):
            moments[f"{name}/m_g"], moments[f"{name}/q_g"] = z.mean(1), (z * z).mean(1)
        boot_key = jax.random.fold_in(key, 2**31)  # the counts the sweep's simulation draws
        counts = paired_group_counts(boot_key, games, spec.num_resamples, out.dtype)
        scores = {"in": jnp.stack([strong, weak]), "out": out, "moments": moments}
        scores["counts"] = counts
        return runner.statistics(key, scores)

    def loop():
        for cid, config, _seed in spec.cells():
            key = jax.random.fold_in(root, cid)
            s = game.simulate(key, config, games=games)
            r = jax.device_get(stats(key, *s))
            for who in ("out", "strong", "weak"):
                metrics.group_moments_from_sums(r[f"{who}/m_g"], r[f"{who}/q_g"], config.tasks)

    return _cold_warm(loop, spec.num_cells)


def time_public_loop(games: int, host: bool | None = None) -> dict:
    """The same cells as a researcher's loop over the public single-point API: per cell
    ``game.simulate``, then per adversary ``metrics.grouped_bootstrap`` (AUC and TPR at 1% FPR
    with paired game CIs), the moments in NumPy, and the exact theory beside them.

    ``host``: the bootstrap's ``host`` keyword; ``None`` (its default) takes the NumPy host
    path at these sizes (no compile, ~0.1 s a call), ``False`` the compiled path (one compile,
    then ~0.01 s a call): the faster choice for a loop."""
    import jax
    import numpy as np

    from mtl_tracing import gaussian, metrics
    from mtl_tracing.gaussian import game

    spec = _spec(games)
    root = jax.random.key(spec.root_seed)
    stats = (metrics.auc, metrics.TprAtFprStatistic(0.01))

    def loop():
        for cid, config, _seed in spec.cells():
            key = jax.random.fold_in(root, cid)
            s = game.simulate(key, config, games=games)
            out = np.asarray(s.out, np.float64)
            _ = out.mean(), out.var()
            for adv in ("strong", "weak"):
                z = getattr(s, f"{adv}_in")
                ivs = metrics.grouped_bootstrap(
                    jax.random.fold_in(key, 2**31),
                    stats,
                    z,
                    s.out,
                    paired=True,
                    num_resamples=spec.num_resamples,
                    host=host,
                )
                _ = [float(v) for iv in ivs for v in iv]
                zn = np.asarray(z, np.float64)
                _ = zn.mean(), zn.var(), gaussian.moments(config)[adv]
                _ = gaussian.exact_auc(config, adv), gaussian.exact_tpr_at_fpr(config, adv, 0.01)
                _ = gaussian.normal_auc(config, adv), gaussian.normal_tpr_at_fpr(config, adv, 0.01)

    return _cold_warm(loop, spec.num_cells)


def time_public_loop_compiled(games: int) -> dict:
    """:func:`time_public_loop` with ``host=False`` (the faster loop: compiled bootstrap)."""
    return time_public_loop(games, host=False)


def compile_vs_cell(games: int) -> dict:
    """One compile of the simulation and of the statistics program (a loop over 12 cells, as
    the engine runs them) vs one cell's run time (T = 16, d = 256)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from mtl_tracing import sweep

    spec = _spec(games)
    runner = sweep.gaussian_runner(spec)
    dt = jnp.dtype(jnp.float32)
    sim = runner.simulate((16,), games, dt)  # the sufficient sampler's bucket: width 16
    shape_args = [
        jnp.full(12, a, jnp.int32 if isinstance(a, np.integer) else dt)
        for a in runner.static_args((16, 8, 256, 4), dt)
    ]
    sim_prog = jax.jit(lambda *args: jax.lax.map(lambda a: sim(*a), args))
    stats_prog = jax.jit(lambda *args: jax.lax.map(lambda a: runner.statistics(*a), args))
    keys = jax.random.split(jax.random.key(1), 12)
    ones = jnp.ones(12)
    out = {}
    for name, prog, args in (
        ("simulation", sim_prog, (keys, ones, ones, ones, *shape_args)),
        ("statistics", stats_prog, None),
    ):
        if args is None:
            args = (keys, sim_prog(keys, ones, ones, ones, *shape_args))
        t0 = time.perf_counter()
        compiled = prog.lower(*args).compile()
        out[f"{name}_compile_s"] = time.perf_counter() - t0
        jax.block_until_ready(compiled(*args))
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        out[f"{name}_cell_s"] = (time.perf_counter() - t0) / 12
    out["compile_s"] = out["simulation_compile_s"] + out["statistics_compile_s"]
    out["cell_s"] = out["simulation_cell_s"] + out["statistics_cell_s"]
    return out


def _child(devices: int, games: int, what: str = "time_sweep") -> dict:
    """``what(games)`` in a fresh process with ``devices`` host devices and no persistent
    compilation cache (so its first call is cold)."""
    env = {
        **os.environ,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "JAX_PLATFORMS": "cpu",
        "MTL_TRACING_NO_CACHE": "1",
    }
    code = (
        "import json, sys; sys.path.insert(0, 'benchmarks'); import bench_sweep as b; "
        f"print(json.dumps(b.{what}({games})))"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    res = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def cli_cache() -> dict:
    """A small ``mtl-tracing sweep`` (2 cells) run twice in fresh processes with an empty
    persistent compilation cache, then again into a new folder: the second run reuses the
    compiled programs. Wall seconds of each."""
    import tempfile

    argv = ["--tasks", "16", "--dim", "64", "--task-std", "0.5,1", "--games", "100"]
    argv += ["--resamples", "50", "--no-progress"]
    exe = os.path.join(os.path.dirname(sys.executable), "mtl-tracing")
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MTL_TRACING_CACHE_DIR": os.path.join(tmp, "xla")}
        env.pop("MTL_TRACING_NO_CACHE", None)
        for name in ("empty_cache_s", "warm_cache_s"):
            t0 = time.perf_counter()
            subprocess.run(
                [exe, "sweep", *argv, "--out", os.path.join(tmp, name)],
                env=env,
                capture_output=True,
                check=True,
            )
            times[name] = time.perf_counter() - t0
    return times


def whole_machine(games: int) -> dict:
    """The sweep as ``mtl-tracing sweep`` runs it (one host device per core) and the public-API
    loop, in the same process."""
    return {"sweep": time_sweep(games), "loop": time_public_loop(games)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=200)
    parser.add_argument("--devices", default="1,2,4", help="device counts for the scaling rows")
    args = parser.parse_args()
    import jax

    print(f"machine: {os.cpu_count()} CPUs, jax {jax.__version__}, {jax.devices()[0].platform}")
    # Every row in its own fresh process (one host device, no compilation cache): cold is
    # the first call there, warm the second.
    vec = _child(1, args.games, "time_sweep")
    print(json.dumps({"sweep": vec}))
    public = _child(1, args.games, "time_public_loop")
    compiled = _child(1, args.games, "time_public_loop_compiled")
    loop = _child(1, args.games, "time_loop")
    cvc = compile_vs_cell(args.games)
    print(f"\n48-cell sweep, G = {args.games} games/cell, each row in a fresh process")
    print(f"{'method':<28} {'cold s':>8} {'warm s':>8} {'cells/s':>9} {'games/s':>10}")
    print(
        f"{'sweep (vmap, 1 device)':<28} {vec['cold_s']:>8.2f} {vec['warm_s']:>8.2f} "
        f"{vec['cells_per_s']:>9.1f} {vec['games_per_s']:>10.0f}"
    )
    for name, r in (
        ("loop, public API", public),
        ("loop, public API, host=False", compiled),
        ("loop, sweep's cell kernel", loop),
    ):
        print(
            f"{name:<28} {r['cold_s']:>8.2f} {r['warm_s']:>8.2f} "
            f"{r['cells_per_s']:>9.1f} {r['cells_per_s'] * args.games:>10.0f}"
        )
        print(
            f"  ratio (loop / sweep): warm {r['warm_s'] / vec['warm_s']:.1f}x, "
            f"cold {r['cold_s'] / vec['cold_s']:.1f}x"
        )
    print(
        f"compiles: {vec['compiles']} ({vec['simulation_compiles']} simulation for 4 shapes, "
        f"{vec['statistics_compiles']} statistics for 2 (G, T)); "
        f"peak RSS {vec['maxrss_mb']:.0f} MB"
    )
    print(
        f"simulation compile {cvc['simulation_compile_s']:.2f} s, statistics compile "
        f"{cvc['statistics_compile_s']:.2f} s"
    )
    print(
        f"one compile {cvc['compile_s']:.2f} s vs one cell {cvc['cell_s'] * 1e3:.2f} ms: padding "
        f"T to the group max saves a compile only when the padded work costs < "
        f"{cvc['compile_s'] / cvc['cell_s']:.0f} cells"
    )
    cores = os.cpu_count() or 1
    both = _child(cores, args.games, "whole_machine")
    sw, lp = both["sweep"], both["loop"]
    print(
        f"\nwhole machine ({cores} host devices = cores, as `mtl-tracing sweep` runs), same "
        f"process: sweep warm {sw['warm_s']:.2f} s (cold {sw['cold_s']:.2f} s), public-API "
        f"loop warm {lp['warm_s']:.2f} s (cold {lp['cold_s']:.2f} s): ratio warm "
        f"{lp['warm_s'] / sw['warm_s']:.1f}x, cold {lp['cold_s'] / sw['cold_s']:.1f}x"
    )
    cache = cli_cache()
    print(
        f"\n`mtl-tracing sweep` (2 cells, fresh processes): empty compilation cache "
        f"{cache['empty_cache_s']:.2f} s, then with the cache {cache['warm_cache_s']:.2f} s"
    )
    print(f"\n{'devices':>7} {'cold s':>8} {'warm s':>8} {'cells/s':>9} {'compiles':>8}")
    for n in (int(x) for x in args.devices.split(",")):
        r = _child(n, args.games)
        print(
            f"{n:>7} {r['cold_s']:>8.2f} {r['warm_s']:>8.2f} {r['cells_per_s']:>9.1f} "
            f"{r['compiles']:>8}"
        )


if __name__ == "__main__":
    main()
