"""Timing shared by the benchmarks: best of ``repeats`` after a compile-and-warm-up call."""

from __future__ import annotations

import math
import time


def best_time(fn, repeats: int) -> float:
    """Seconds of the fastest of ``repeats`` calls of ``fn()`` (results blocked on), after one
    untimed call that compiles and warms up."""
    import jax

    jax.block_until_ready(fn())
    best = math.inf
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t0)
    return best
