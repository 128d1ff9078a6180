"""Benchmark: the MAML attacks at the paper's Tables III-IV grid, vectorised vs per-trial loop.

Grid: iterations 50/100/200 x data sizes 3/5/10/15/20 (the number of images reconstructed: a
``size``-way 1-shot set), 28x28 random images, MAML's 4-block conv net (32 channels, one inner
step). Per cell and attack (query, support): the per-attack time of the vectorised attack
(``trials`` targets in one compiled call, vmapped) and of a per-trial loop of the same compiled
single-trial attack, in the same run, both warm (compiled before timing, ``block_until_ready``).
The iteration count is a traced loop bound (``lax.fori_loop`` over the objective and Adam
step of :mod:`mtl_tracing.attacks.gradient_inversion`), so each (size, attack, layout) compiles
once for the three iteration counts.

Paper (Tables III-IV, PyTorch, one attack at a time, dual-core PC): query attack, 50 iterations,
size 3: 1.34 s; support attack: 3.54 s.

Run: ``python benchmarks/bench_maml.py [--quick] [--trials 8] [--loop-trials 2]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import time

import jax
import jax.numpy as jnp
import optax

from mtl_tracing.attacks import gradient_inversion as gi
from mtl_tracing.data.fewshot import FewShotTasks, task_labels
from mtl_tracing.victims import maml

PAPER = {
    "support": {
        50: (3.54, 4.05, 6.28, 7.16, 8.84),
        100: (7.26, 8.02, 11.29, 14.57, 17.45),
        200: (14.09, 15.93, 21.71, 29.71, 34.79),
    },
    "query": {
        50: (1.34, 1.64, 1.94, 2.4, 3.42),
        100: (2.56, 3.08, 3.86, 4.87, 5.79),
        200: (5.12, 6.04, 7.63, 9.22, 14.11),
    },
}
SIZES = (3, 5, 10, 15, 20)
ITERATIONS = (50, 100, 200)


def _attack(model, kind, params, grads, x0, slot, key, query_x, iterations):
    """One trial; the same objective and Adam step as gradient_inversion.invert."""
    labels = task_labels(model.ways, 1)
    x = jax.random.uniform(key, (model.ways,) + x0.shape, x0.dtype).at[slot].set(x0)
    if kind == "query":
        obj = functools.partial(
            gi.query_objective, model, params, labels=labels, grads=grads, alpha=1e-3
        )
    else:
        obj = functools.partial(
            gi.support_objective,
            model,
            params,
            labels=labels,
            query_x=query_x,
            query_y=labels,
            grads=grads,
            alpha=1e-3,
        )
    opt = optax.adam(0.01)

    def body(_, carry):
        x, state = carry
        grad = jax.grad(obj)(x)
        updates, state = opt.update(grad, state, x)
        return jnp.clip(optax.apply_updates(x, updates), 0.0, 1.0), state

    x, _ = jax.lax.fori_loop(0, iterations, body, (x, opt.init(x)))
    return gi.ssim(x0, x[slot])


def _programs(model, kind):
    one = jax.jit(functools.partial(_attack, model, kind))
    many = jax.jit(
        jax.vmap(functools.partial(_attack, model, kind), in_axes=(None, 0, 0, 0, 0, 0, None))
    )
    return one, many


def _time(fn, *args):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - t


def run(sizes, iterations, trials, loop_trials, channels, conv="xla"):
    rows = []
    for size in sizes:
        model = maml.ModelConfig(image_shape=(28, 28, 1), ways=size, channels=channels, conv=conv)
        key = jax.random.key(size)
        params = maml.init_params(model, key)
        k_s, k_q, k_x, k_v = jax.random.split(jax.random.fold_in(key, 1), 4)
        shape = (trials, size, 28, 28, 1)
        sx, qx = jax.random.uniform(k_s, shape), jax.random.uniform(k_q, shape)
        labels = jnp.broadcast_to(task_labels(size, 1), (trials, size))
        tasks = FewShotTasks(sx, labels, qx, labels, labels, labels, labels)
        grads = maml.task_gradients(model, params, tasks, k_v).grads
        slots = jnp.zeros((trials,), jnp.int32)
        keys = jax.random.split(k_x, trials)
        for kind in ("query", "support"):
            x0 = (qx if kind == "query" else sx)[:, 0]
            one, many = _programs(model, kind)
            t0 = time.perf_counter()
            jax.block_until_ready(many(params, grads, x0, slots, keys, qx, 1))

            def sub(i, grads=grads, x0=x0, slots=slots, keys=keys, qx=qx):
                return jax.tree.map(lambda a: a[i], grads), x0[i], slots[i], keys[i], qx[i]

            jax.block_until_ready(one(params, *sub(0), 1))
            compile_s = time.perf_counter() - t0
            for it in iterations:
                vec = _time(many, params, grads, x0, slots, keys, qx, it) / trials
                loop = sum(_time(one, params, *sub(i), it) for i in range(loop_trials))
                loop /= loop_trials
                paper = PAPER[kind][it][SIZES.index(size)] if size in SIZES else None
                rows.append(
                    {
                        "attack": kind,
                        "iterations": it,
                        "size": size,
                        "vectorised_s": vec,
                        "loop_s": loop,
                        "speedup": loop / vec,
                        "paper_s": paper,
                        "compile_s": compile_s,
                    }
                )
                print(
                    f"{kind:<8} it={it:<4} size={size:<3} vectorised {vec:8.4f} s/attack  "
                    f"loop {loop:8.4f} s/attack  x{loop / vec:5.1f}  paper {paper} s",
                    flush=True,
                )
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="sizes 3, 5 and 50 iterations only")
    p.add_argument("--trials", type=int, default=8, help="targets per vectorised call")
    p.add_argument("--loop-trials", type=int, default=2, help="trials timed in the loop")
    p.add_argument("--channels", type=int, default=32, help="conv filters (MAML: 32 or 64)")
    p.add_argument("--conv", default="patches", choices=("xla", "patches"), help="conv layer")
    p.add_argument("--json", default=None, help="write the rows here")
    a = p.parse_args(argv)
    sizes = (3, 5) if a.quick else SIZES
    iterations = (50,) if a.quick else ITERATIONS
    rows = run(sizes, iterations, a.trials, a.loop_trials, a.channels, a.conv)
    meta = {
        "machine": platform.platform(),
        "processor": platform.processor(),
        "devices": [str(d) for d in jax.devices()],
        "trials": a.trials,
        "loop_trials": a.loop_trials,
        "channels": a.channels,
    }
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": rows, "meta": meta}, f, indent=1)
    # The script checks its own output: every cell measured, every time positive.
    assert len(rows) == 2 * len(sizes) * len(iterations)
    assert all(r["vectorised_s"] > 0 and r["loop_s"] > 0 for r in rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
