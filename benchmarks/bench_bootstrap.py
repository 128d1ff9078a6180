"""Benchmark: the grouped bootstrap's statistics paths on the running backend.

For paired game scores of a few sizes, the same integer group counts (R = 200 replicates) are
scored by each path of ``metrics.bootstrap`` that applies: ``sorted`` (the reference: one sort,
then O(n) per replicate), ``pairs`` (one group-pair count matrix for all replicates) and, when
small enough, ``host`` (NumPy, nothing to compile). Statistics: AUC and TPR at FPR 1e-3 and
1e-2, as the sweep computes them. Prints compile + first run (cold) and the best warm time
per path, the ratio to the sorted path, and the path ``grouped_bootstrap`` picks here
(``bootstrap._choose_path``: its backend rule is ``_PAIR_BACKENDS``).

Run: ``.venv/bin/python benchmarks/bench_bootstrap.py [--repeats 3]``. Results:
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MTL_TRACING_NO_CACHE", "1")

import jax  # noqa: E402
import numpy as np  # noqa: E402

from mtl_tracing import metrics  # noqa: E402
from mtl_tracing.metrics import _fast, _host, bootstrap  # noqa: E402

STATS = (metrics.auc, metrics.TprAtFprStatistic(1e-3), metrics.TprAtFprStatistic(1e-2))
SIZES = ((64, 16), (200, 64), (500, 256), (2000, 256))  # (G games, T scores per game)


def _time(fn, repeats: int) -> tuple[float, float, object]:
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        warm.append(time.perf_counter() - t0)
    return cold, min(warm), out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--resamples", type=int, default=200)
    args = p.parse_args()
    jax.config.update("jax_enable_compilation_cache", False)
    print(f"machine: {os.cpu_count()} CPUs, jax {jax.__version__}, {jax.devices()[0]}")
    print(f"{'G x T':>12} {'path':>7} {'cold s':>8} {'warm s':>9} {'vs sorted':>10} chosen")
    for g, t in SIZES:
        rng = np.random.default_rng(0)
        s_in = jax.numpy.asarray(rng.normal(0.5, 1.0, (g, t)), np.float32)
        s_out = jax.numpy.asarray(rng.normal(0.0, 1.0, (g, t)), np.float32)
        key = jax.random.key(1)
        counts = bootstrap._counts_program(
            key, g_in=g, g_out=g, num_resamples=args.resamples, paired=True
        )
        chosen = bootstrap._choose_path(key, s_in, s_out, STATS, args.resamples)
        chunk = bootstrap._default_chunk(2 * g * t, args.resamples, np.float32)
        kw = dict(statistics=STATS, level=0.95, chunk=chunk)
        rows = {}
        applies = _fast.pair_path_applies((g, t), (g, t), (None, 1e-3, 1e-2), np.float32)
        data = (counts, s_in, s_out)
        for path in ("sorted", "pairs") if applies else ("sorted",):

            def run(path=path, data=data, kw=kw):
                return bootstrap._intervals_program(*data, path=path, **kw)[0]

            rows[path] = _time(run, args.repeats)
        if (args.resamples + 1) * 2 * g * t <= _host.HOST_MAX_WORK:

            def host(data=data):
                return bootstrap._host_intervals(*data, STATS, 0.95)

            rows["host"] = _time(host, args.repeats)
        ref = rows["sorted"]
        for path, (cold, warm, out) in rows.items():
            pairs = zip(out, ref[2], strict=True)
            diff = max(abs(float(a.estimate) - float(b.estimate)) for a, b in pairs)
            assert diff < 1e-5, (path, diff)  # the same statistics on the same counts
            mark = "<-" if path == chosen else ""
            print(
                f"{f'{g} x {t}':>12} {path:>7} {cold:>8.2f} {warm:>9.4f} "
                f"{ref[1] / warm:>9.1f}x {mark}"
            )


if __name__ == "__main__":
    main()
