"""Benchmark: compile time of random draws, JAX in the array's shape vs ``flat_random``.

Rows (all in this process, persistent compilation cache off; every program is distinct, so
each row compiles):

- ``jax.random.normal(key, shape)`` jitted (baseline) against ``flat_random.normal`` (the
  draw made flat with ``jax.random`` and reshaped), for shapes of rank 1 to 5 and a vmapped
  rank-2 draw;
- flax's default LeCun-normal conv kernel (3, 3, 4, 8) against ``flat_random.lecun_normal``.

Each row prints whether both happen to give the same numbers (only the law of a reshaped
draw is promised). Run:
``.venv/bin/python benchmarks/bench_compile_draws.py``. Results: ``benchmarks/README.md``.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("MTL_TRACING_NO_CACHE", "1")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

jax.config.update("jax_enable_compilation_cache", False)

from mtl_tracing import flat_random  # noqa: E402


def _compile_s(fn, *args) -> tuple[float, object]:
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return time.perf_counter() - t0, compiled(*args)


def main() -> None:
    print(f"machine: {os.cpu_count()} CPUs; jax {jax.__version__}, {jax.default_backend()}")
    key = jax.random.key(0)
    keys = jax.random.split(key, 8)
    _compile_s(lambda x: x + 1, jnp.ones(3))  # backend start-up, not timed below
    print(f"{'draw':38s} {'jax s':>8s} {'ours s':>8s} {'ratio':>7s} same")
    rows = [
        ("normal (64,)", (64,), False),
        ("normal (8, 8)", (8, 8), False),
        ("normal (4, 4, 4)", (4, 4, 4), False),
        ("normal (2, 4, 4, 2)", (2, 4, 4, 2), False),
        ("normal (2, 2, 2, 2, 4)", (2, 2, 2, 2, 4), False),
        ("normal (16, 32) vmapped over 8 keys", (16, 32), True),
    ]
    for name, shape, vmapped in rows:
        ref = lambda k, s=shape: jax.random.normal(k, s)  # noqa: E731
        ours = lambda k, s=shape: flat_random.normal(k, s)  # noqa: E731
        arg = keys if vmapped else key
        if vmapped:
            ref, ours = jax.vmap(ref), jax.vmap(ours)
        t_ref, a = _compile_s(ref, arg)
        t_ours, b = _compile_s(ours, arg)
        same = np.array_equal(np.asarray(a), np.asarray(b))
        print(f"{name:38s} {t_ref:8.3f} {t_ours:8.3f} {t_ref / t_ours:6.1f}x {same}")

    shape = (3, 3, 4, 8)
    t_ref, a = _compile_s(lambda k: jax.nn.initializers.lecun_normal()(k, shape), key)
    t_ours, b = _compile_s(lambda k: flat_random.lecun_normal()(k, shape), key)
    same = np.array_equal(np.asarray(a), np.asarray(b))
    name = "lecun_normal conv kernel (3, 3, 4, 8)"
    print(f"{name:38s} {t_ref:8.3f} {t_ours:8.3f} {t_ref / t_ours:6.1f}x {same}")


if __name__ == "__main__":
    main()
