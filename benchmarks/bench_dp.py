"""Benchmark: task-level DP-SGD step costs and the 10^6-trial canary audit.

Measured in one run at the default synthetic config (T = 64 tasks, d = 64, m = 16, N = 16,
hidden 512), float32, jitted and warmed up, best of ``--repeats``:

1. one ``DPSGDTrainer.step`` with the default ``per_task="auto"`` (the faster path on the
   running backend, ``victims.dp.resolve_per_task``), with ``per_task="chunked"`` (per-task
   gradients by vmap in chunks, chunks without a sampled task skipped) and with the reference
   ``per_task="all"`` (all T per-task gradients by vmap, then clip), each with the Poisson
   mask and noise (target: the default <= the faster of the two),
   against the non-private ``MTLTrainer.step`` on the same T tasks (task batch T: the same
   forward/backward work without per-task gradients; target <= 2x), and against the
   non-private step on its usual batch of q T tasks (for reference);
2. the same DP step with the per-task gradients computed by a Python loop over the T tasks
   (one jitted per-task gradient call each, then clip, sum and noise; target >= 10x slower
   than the DP step, i.e. the default chunked step);
3. a cold audit of 10^6 worst-case canary trials (sampling in one compiled call + the
   Clopper-Pearson bounds), in a fresh subprocess so compilation is included, imports and
   backend start-up excluded (target < 2 s).

Run: ``.venv/bin/python benchmarks/bench_dp.py [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import optax
from _timing import best_time
from flax import nnx

from mtl_tracing.data import synthetic
from mtl_tracing.victims.dp import DPConfig, DPSGDTrainer, clip_and_noise, resolve_per_task
from mtl_tracing.victims.mtl import MTLTrainer, TrainConfig, model_graphdef

COLD_AUDIT = """
import time
import jax, numpy as np
from mtl_tracing import audit
jax.devices()  # backend start-up is not part of the audit
t0 = time.perf_counter()
a, b = audit.canary_scores(jax.random.key(0), clip=1.0, noise_multiplier=2.0, trials=10**6)
r = audit.audit(np.asarray(a), np.asarray(b), delta=1e-5)
print(time.perf_counter() - t0, r.mu_lb, r.epsilon_lb)
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    cfg = synthetic.SyntheticConfig()
    data = synthetic.generate(jax.random.key(0), cfg)
    T, q = cfg.tasks, 0.25
    train = TrainConfig(epochs=10, task_batch=int(q * T), warm_start_epochs=0)
    dp = DPSGDTrainer(train, cfg.embed_dim, DPConfig(q, 1.0, 1.0))
    dp_vmap = DPSGDTrainer(train, cfg.embed_dim, DPConfig(q, 1.0, 1.0, per_task="all"))
    dp_chunk = DPSGDTrainer(train, cfg.embed_dim, DPConfig(q, 1.0, 1.0, per_task="chunked"))
    plain_full = MTLTrainer(train.replace(task_batch=T), cfg.embed_dim)
    plain = MTLTrainer(train, cfg.embed_dim)
    key = jax.random.key(1)
    print(f"machine: {os.cpu_count()} CPUs, jax {jax.__version__}, {jax.devices()[0].platform}")
    print(f"config: T={T} d={cfg.dim} m={cfg.embed_dim} N={cfg.samples} hidden={train.hidden}")

    dp_state = dp.init(key, data)
    dp_batch = jax.tree.map(lambda x: x[0], dp.batches(key, data))
    dp_step = jax.jit(dp.step)
    t_dp = best_time(lambda: dp_step(dp_state, key, dp_batch)[0].params, args.repeats)
    vmap_step = jax.jit(dp_vmap.step)
    t_vmap = best_time(lambda: vmap_step(dp_state, key, dp_batch)[0].params, args.repeats)
    chunk_step = jax.jit(dp_chunk.step)
    t_chunk = best_time(lambda: chunk_step(dp_state, key, dp_batch)[0].params, args.repeats)

    def plain_time(tr):
        st = tr.init(key, data)
        b = jax.tree.map(lambda x: x[0], tr.batches(key, data))
        f = jax.jit(tr.step)
        return best_time(lambda: f(st, key, b)[0].params, args.repeats)

    t_full, t_q = plain_time(plain_full), plain_time(plain)

    # Per-task Python loop: the same DP step, per-task gradients one jitted call per task.
    graphdef = model_graphdef(cfg.dim, cfg.embed_dim, T, train.hidden, data.x.dtype)
    shared = {k: v for k, v in dp_state.params.items() if k not in ("head_kernel", "head_bias")}
    heads = {k: dp_state.params[k] for k in ("head_kernel", "head_bias")}

    @jax.jit
    def task_grad(sh, x_i, y_i, i):
        def loss(s):
            model = nnx.merge(graphdef, dict(s, **heads))
            logits = model(x_i, jnp.full(x_i.shape[:-1], i))
            return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, y_i))

        return jax.grad(loss)(sh)

    noise = jax.jit(
        lambda k, g, m: clip_and_noise(k, g, m, clip=1.0, noise_multiplier=1.0, expected=q * T)[0]
    )

    def loop_step():
        gs = [task_grad(shared, data.x[i], data.y[i], i) for i in range(T)]
        stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *gs)
        return noise(key, stacked, dp_batch["mask"].astype(data.x.dtype))

    t_loop = best_time(loop_step, args.repeats)

    # A stronger loop: per-task gradients of the sampled tasks only (the same sum).
    sampled = [i for i in range(T) if bool(dp_batch["mask"][i])]

    def sampled_loop_step():
        gs = [task_grad(shared, data.x[i], data.y[i], i) for i in sampled]
        stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *gs)
        return noise(key, stacked, jnp.ones(len(sampled), data.x.dtype))

    t_sloop = best_time(sampled_loop_step, args.repeats)

    out = subprocess.run(
        [sys.executable, "-c", COLD_AUDIT],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MTL_TRACING_NO_CACHE": "1"},
    )
    t_audit, mu_lb, eps_lb = (float(v) for v in out.stdout.split())

    print(f"\n{'measurement':<58} {'ms':>9} {'ratio':>7}")
    print(f"tasks sampled in the timed step: {int(dp_batch['mask'].sum())} of {T}")
    name = f"DP-SGD step, default (auto -> {resolve_per_task('auto')}; mask, noise)"
    print(f"{name:<58} {1e3 * t_dp:>9.2f}")
    name = "DP-SGD step, per_task=chunked"
    print(f"{name:<58} {1e3 * t_chunk:>9.2f} {t_chunk / t_dp:>6.2f}x")
    name = "DP-SGD step, per_task=all (reference)"
    print(f"{name:<58} {1e3 * t_vmap:>9.2f} {t_vmap / t_dp:>6.2f}x")
    verdict = "met" if t_dp <= 1.1 * min(t_chunk, t_vmap) else "NOT met"
    print(f"target default <= the faster of chunked/all (10% timing noise): {verdict}")
    print(f"{'non-private step, same T tasks':<58} {1e3 * t_full:>9.2f} {t_dp / t_full:>6.2f}x")
    print(
        f"{f'non-private step, batch q T = {int(q * T)} tasks':<58} {1e3 * t_q:>9.2f} "
        f"{t_dp / t_q:>6.2f}x"
    )
    print(f"{'DP-SGD step, per-task Python loop':<58} {1e3 * t_loop:>9.2f} {t_loop / t_dp:>6.2f}x")
    name = f"same, loop over the {len(sampled)} sampled tasks only"
    print(f"{name:<58} {1e3 * t_sloop:>9.2f} {t_sloop / t_dp:>6.2f}x")
    print(f"{'audit of 1e6 canary trials, cold (fresh process)':<58} {1e3 * t_audit:>9.0f}")
    print(f"  canary mu = 1: mu_lb {mu_lb:.4f}, epsilon_lb {eps_lb:.3f} at delta 1e-5")


if __name__ == "__main__":
    main()
