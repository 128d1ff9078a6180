"""Benchmark: the GMRF and robust victims against Algorithm 3, in one run.

1. One adversarial-training step (PGD, n steps, l2) against one standard step of Algorithm 3
   on the same minibatch (the ratio; theory: about n + 1 forward-backward passes).
2. The Omega-step (:func:`gmrf.omega_update`) against T in {16, 64, 256, 1024}: the closed form
   (one T x T inverse + one eigendecomposition) and the graphical lasso (``--admm-iters``
   ADMM iterations, one eigendecomposition each): growth ~ T^3.
3. Each trainer's wall time for one run at Figure 6's default configuration (T = 64, d = 64,
   m = 16, N = 16, hidden 512, 100 epochs), compilation excluded (warm-up run first).

Run: ``.venv/bin/python benchmarks/bench_victims.py [--epochs 100] [--admm-iters 50]``.
"""

from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
from _timing import best_time

from mtl_tracing.data import synthetic
from mtl_tracing.data.base import MultitaskData
from mtl_tracing.experiments import figure6
from mtl_tracing.victims import gmrf, mtl, robust
from mtl_tracing.victims.trainer import fit


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--pgd-steps", type=int, default=5)
    p.add_argument("--admm-iters", type=int, default=50)
    p.add_argument("--tasks", default="16,64,256,1024")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, jax {jax.__version__}, {jax.devices()[0].platform}")

    base = figure6.DEFAULT_CONFIG
    data_cfg = base.data
    tc = base.train.replace(epochs=args.epochs, warm_start_epochs=min(10, args.epochs))
    m = data_cfg.embed_dim
    data = synthetic.generate(jax.random.key(0), data_cfg)
    in_part = MultitaskData(data.x, data.y, None, None, data.x_heldout, data.y_heldout)

    # 1. one step
    pgd = robust.PGDConfig(norm="l2", eps=1.0, steps=args.pgd_steps)
    std, rob = mtl.MTLTrainer(tc, m), robust.RobustTrainer(tc, m, pgd)
    state = std.init(jax.random.key(1), in_part)
    batch = jax.tree.map(lambda v: v[0], std.batches(jax.random.key(2), in_part))
    k = jax.random.key(3)
    step_std = jax.jit(std.step)
    step_rob = jax.jit(rob.step)
    t_std = best_time(lambda: step_std(state, k, batch), args.repeats * 10)
    t_rob = best_time(lambda: step_rob(state, k, batch), args.repeats * 10)
    print(f"\n1. one step, task batch {tc.task_batch} x N={data_cfg.samples}, hidden {tc.hidden}")
    print(f"   standard step {1e3 * t_std:.2f} ms; PGD-{args.pgd_steps} adversarial step "
          f"{1e3 * t_rob:.2f} ms; ratio {t_rob / t_std:.1f}x")  # fmt: skip

    # 2. Omega-step against T
    print(f"\n2. Omega-step (p = m + 1 = {m + 1}), best of {args.repeats}")
    print(f"   {'T':>5} {'closed form ms':>15} {'glasso ms':>12} ({args.admm_iters} ADMM iters)")
    closed = gmrf.GMRFConfig(l1=0.0)
    lasso = gmrf.GMRFConfig(l1=0.1, admm_iters=args.admm_iters)
    f_closed = jax.jit(lambda W: gmrf.omega_update(W, closed))
    f_lasso = jax.jit(lambda W: gmrf.omega_update(W, lasso))
    for T in (int(t) for t in args.tasks.split(",")):
        W = jax.random.normal(jax.random.key(T), (T, m + 1), jnp.float32)
        tc_ = best_time(lambda W=W: f_closed(W), args.repeats)
        tl_ = best_time(lambda W=W: f_lasso(W), 1 if T >= 1024 else args.repeats)
        print(f"   {T:>5} {1e3 * tc_:>15.2f} {1e3 * tl_:>12.1f}")

    # 3. each trainer, one run at Figure 6's default configuration
    print(f"\n3. one run, Figure 6 default config ({args.epochs} epochs), compile excluded")
    trainers = {
        "standard": std,
        "gmrf": gmrf.GMRFTrainer(tc, m, gmrf.GMRFConfig(eta=0.3, l1=0.1)),
        "robust": rob,
    }
    for name, tr in trainers.items():
        t = best_time(lambda tr=tr: fit(tr, jax.random.key(4), in_part).state, 1)
        print(f"   {name:>9}: {t:.2f} s")


if __name__ == "__main__":
    main()
