"""Benchmark the Gaussian tracing-game samplers at Figure-7 size (T = d = 256, N = 8, k = 4).

    .venv/bin/python benchmarks/bench_game.py [--jax-games 400] [--numpy-games 40] [--skip-e2e]

In one process: games/second of (a) the faithful JAX sampler, (b) the sufficient-statistics
JAX sampler and (c) a plain NumPy version of the faithful game (vectorised within a game, a
Python loop over games, ``np.random.default_rng``), with the ratios vs NumPy; the random
numbers/second of the faithful sampler against ``jax.random.normal`` alone (its ceiling on
CPU); and the end-to-end wall time of ``mtl-tracing figure7`` (2000 games, compilation
included) in a subprocess. Results are recorded in ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from mtl_tracing.gaussian import game
from mtl_tracing.gaussian.config import GaussianGameConfig

CONFIG = GaussianGameConfig(
    tasks=256, dim=256, samples=8, challenge=4, task_std=1.0, sample_std=1.0
)


def numpy_faithful_game(rng: np.random.Generator, cfg: GaussianGameConfig):
    """One faithful game in plain NumPy: returns (strong_in, weak_in, out), each (T,)."""
    t, n, d, k = cfg.tasks, cfg.samples, cfg.dim, cfg.challenge
    mu_bar = cfg.mean_array()
    mu_in = mu_bar + cfg.task_std * rng.standard_normal((t, d))  # IN task means
    x = mu_in[:, None, :] + cfg.sample_std * rng.standard_normal((t, n, d))  # training data
    alpha = x.mean(axis=(0, 1)) - mu_bar  # mu_hat - mu_bar
    pick = rng.permuted(np.tile(np.arange(n), (t, 1)), axis=1)[:, :k]  # k of N, no replacement
    strong_b = np.take_along_axis(x, pick[:, :, None], axis=1).mean(axis=1)
    weak_b = (mu_in[:, None, :] + cfg.sample_std * rng.standard_normal((t, k, d))).mean(axis=1)
    mu_out = mu_bar + cfg.task_std * rng.standard_normal((t, d))  # fresh OUT tasks
    out_b = (mu_out[:, None, :] + cfg.sample_std * rng.standard_normal((t, k, d))).mean(axis=1)
    return (strong_b - mu_bar) @ alpha, (weak_b - mu_bar) @ alpha, (out_b - mu_bar) @ alpha


def normals_per_game(cfg: GaussianGameConfig) -> int:
    """Standard normals a faithful game needs: T d (1 + N + k + 1 + k) (means, data, weak, OUT)."""
    t, n, d, k = cfg.tasks, cfg.samples, cfg.dim, cfg.challenge
    return t * d * (2 + n + 2 * k)


def _best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_jax_sampler(sampler: str, games: int, repeats: int) -> float:
    """Games/second of ``game.simulate`` (warm: compiled by a first call of the same size)."""
    key = jax.random.key(0)

    def go():
        scores = game.simulate(key, CONFIG, games=games, sampler=sampler)
        jax.block_until_ready(scores)

    go()  # warm-up: compile
    return games / _best_of(go, repeats)


def bench_numpy(games: int, repeats: int) -> float:
    rng = np.random.default_rng(0)

    def go():
        for _ in range(games):
            numpy_faithful_game(rng, CONFIG)

    numpy_faithful_game(rng, CONFIG)  # warm-up (allocator, caches)
    return games / _best_of(go, repeats)


def bench_jax_normal(size: int, repeats: int) -> float:
    """Standard normals/second of jitted ``jax.random.normal`` alone (float32)."""
    f = jax.jit(lambda key: jax.random.normal(key, (size,), jnp.float32))
    key = jax.random.key(1)
    f(key).block_until_ready()
    return size / _best_of(lambda: f(key).block_until_ready(), repeats)


def bench_end_to_end(games: int) -> float:
    """Wall seconds of ``python -m mtl_tracing figure7`` in a fresh process (compile included;
    the persistent compilation cache is off, so nothing compiled earlier is reused)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "mtl_tracing", "figure7", "--out", tmp, "--games", str(games)]
        cmd.append("--no-progress")
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        env = {**os.environ, "MTL_TRACING_NO_CACHE": "1"}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        if proc.returncode != 0:
            raise RuntimeError(f"figure7 failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        stages = json.loads((Path(tmp) / "figure7.json").read_text()).get("timings_s", {})
    print(f"  CPU time of the subprocess (user + sys): {cpu:.1f} s")
    print("  stages (wall s): " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
    return wall


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jax-games", type=int, default=400, help="games per timed faithful call")
    p.add_argument("--sufficient-games", type=int, default=2000, help="games per sufficient call")
    p.add_argument("--numpy-games", type=int, default=40, help="games per timed NumPy loop")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats (best is kept)")
    p.add_argument("--e2e-games", type=int, default=2000, help="games of the end-to-end run")
    p.add_argument("--skip-e2e", action="store_true", help="skip the end-to-end subprocess")
    args = p.parse_args(argv)

    c = CONFIG
    print(
        f"config: T={c.tasks} d={c.dim} N={c.samples} k={c.challenge}; jax {jax.__version__}, "
        f"devices {jax.devices()}, nproc {os.cpu_count()}"
    )
    numpy_gps = bench_numpy(args.numpy_games, args.repeats)
    faithful_gps = bench_jax_sampler("faithful", args.jax_games, args.repeats)
    sufficient_gps = bench_jax_sampler("sufficient", args.sufficient_games, args.repeats)
    per_game = normals_per_game(c)
    # Best rate of jitted jax.random.normal over array sizes of 1, 8 and 32 games' worth.
    normal_rate = max(bench_jax_normal(per_game * m, args.repeats) for m in (1, 8, 32))

    print(f"\n{'implementation':<34} {'games/s':>10} {'vs NumPy':>9}")
    for name, gps in (
        ("NumPy faithful (loop over games)", numpy_gps),
        ("JAX faithful (game.simulate)", faithful_gps),
        ("JAX sufficient (game.simulate)", sufficient_gps),
    ):
        print(f"{name:<34} {gps:>10.1f} {gps / numpy_gps:>8.1f}x")
    faithful_rate = faithful_gps * per_game
    print(f"\nfaithful game: {per_game:,} standard normals per game (T d (N + 2k + 2))")
    print(f"  faithful JAX sampler      : {faithful_rate / 1e6:8.1f} M normals/s")
    print(
        f"  jax.random.normal alone   : {normal_rate / 1e6:8.1f} M normals/s "
        f"(best of 1/8/32 games' worth; sampler at "
        f"{faithful_rate / normal_rate:.0%} of it)"
    )
    print(f"  NumPy default_rng faithful: {numpy_gps * per_game / 1e6:8.1f} M normals/s")
    print(
        f"\ntarget sufficient >= 5x NumPy faithful: {sufficient_gps / numpy_gps:.1f}x "
        f"-> {'met' if sufficient_gps >= 5 * numpy_gps else 'NOT met'}"
    )
    if not args.skip_e2e:
        wall = bench_end_to_end(args.e2e_games)
        print(
            f"figure7 end to end ({args.e2e_games} games, subprocess, compile included): "
            f"{wall:.1f} s -> target < 30 s {'met' if wall < 30 else 'NOT met'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
