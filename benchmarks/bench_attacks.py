"""Benchmark: the attack sweep at paper scale, vectorised JAX vs a plain per-trial NumPy loop.

Paper scale (App. A.5.1): 512 tasks (256 IN + 256 OUT), 128 trials, k = 8, m = 32, n = 22 rows per
task, leave-one-task-out whitening, both attacks, then AUC / TPR at 1% and 0.1% FPR / percentile
table and a task-resampling bootstrap CI of the AUC (200 resamples).

Baseline: what public reference code does: for every task, recompute the covariance of all other
tasks' embeddings with ``np.cov`` and whiten; then a Python loop over trials and tasks, drawing a
challenge set with ``rng.choice`` and computing each statistic with NumPy; AUC by ranks and a Python
loop over bootstrap resamples.

Run: ``.venv/bin/python benchmarks/bench_attacks.py [--tasks 256 --trials 128]``.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
from scipy import stats

from mtl_tracing import attacks


def _auc(s_in: np.ndarray, s_out: np.ndarray) -> float:
    ranks = stats.rankdata(np.concatenate([s_in, s_out]))
    n_in, n_out = s_in.size, s_out.size
    return (ranks[:n_in].sum() - n_in * (n_in + 1) / 2) / (n_in * n_out)


def _tpr_at(s_in, s_out, fpr):
    thr = np.quantile(s_out, 1 - fpr, method="higher")
    return float(np.mean(s_in > thr))


def baseline(seed, pool_in, pool_out, k, trials, ridge, num_resamples):
    rng = np.random.default_rng(seed)
    pool = np.concatenate([pool_in, pool_out]).astype(np.float64)
    tasks, n, m = pool.shape
    whitened = np.empty_like(pool)
    for t in range(tasks):
        rest = np.concatenate([pool[:t], pool[t + 1 :]]).reshape(-1, m)
        q = np.cov(rest, rowvar=False)
        vals, vecs = np.linalg.eigh(q)
        vals = np.maximum(vals, 0)
        w = vecs @ np.diag((vals + ridge * vals.sum() / m) ** -0.5) @ vecs.T
        whitened[t] = (pool[t] - rest.mean(axis=0)) @ w.T
    var = np.empty((tasks, trials))
    ip = np.empty((tasks, trials))
    for trial in range(trials):
        for t in range(tasks):
            e = whitened[t, rng.choice(n, size=k, replace=False)]
            var[t, trial] = np.cov(e, rowvar=False).trace()
            s = [abs(e[i] @ e[j]) for i in range(k) for j in range(i + 1, k)]
            ip[t, trial] = np.mean(s)
    t_in = pool_in.shape[0]
    if not num_resamples:  # attacks only (no evaluation)
        return {
            name: dict(auc=_auc(sc[:t_in].ravel(), sc[t_in:].ravel()))
            for name, sc in (("variance", var), ("inner_product", ip))
        }
    out = {}
    for name, sc in (("variance", var), ("inner_product", ip)):
        s_in, s_out = sc[:t_in], sc[t_in:]
        boots = []
        for _ in range(num_resamples):
            a = s_in[rng.integers(0, t_in, t_in)].ravel()
            b = s_out[rng.integers(0, s_out.shape[0], s_out.shape[0])].ravel()
            boots.append(_auc(a, b))
        out[name] = dict(
            auc=_auc(s_in.ravel(), s_out.ravel()),
            ci=np.quantile(boots, [0.025, 0.975]),
            tpr=[_tpr_at(s_in.ravel(), s_out.ravel(), f) for f in (0.01, 0.001)],
            pct=[np.percentile(sc.ravel(), p) for p in (50, 75, 90)],
        )
    return out


def vectorised(key, pool_in, pool_out, k, trials, ridge, num_resamples):
    k_run, k_eval = jax.random.split(key)
    scores = attacks.run_attacks(
        k_run, pool_in, pool_out, k=k, trials=trials, whiten=True, ridge=ridge
    )
    res = attacks.evaluate(k_eval, scores, num_resamples=num_resamples) if num_resamples else None
    return jax.block_until_ready((scores, res))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=256, help="IN tasks (= OUT tasks)")
    p.add_argument("--samples", type=int, default=22, help="rows per task pool")
    p.add_argument("--trials", type=int, default=128)
    p.add_argument("--challenge", type=int, default=8)
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--resamples", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--no-eval", action="store_true", help="time the attacks only (no metrics/bootstrap)"
    )
    args = p.parse_args()
    if args.no_eval:
        args.resamples = 0
    rng = np.random.default_rng(0)
    shape = (args.tasks, args.samples, args.dim)
    pool_in = rng.normal(size=shape).astype(np.float32)
    pool_out = rng.normal(size=shape).astype(np.float32)
    common = dict(k=args.challenge, trials=args.trials, ridge=1e-3, num_resamples=args.resamples)

    vectorised(jax.random.key(0), pool_in, pool_out, **common)  # warm-up (compile)
    times = []
    for r in range(args.repeats):
        t0 = time.perf_counter()
        vectorised(jax.random.key(r + 1), pool_in, pool_out, **common)
        times.append(time.perf_counter() - t0)
    t_jax = min(times)
    t0 = time.perf_counter()
    ref = baseline(0, pool_in, pool_out, **common)
    t_np = time.perf_counter() - t0
    print(f"device: {jax.devices()[0]}")
    print(
        f"scale: {2 * args.tasks} tasks, {args.trials} trials, k={args.challenge}, m={args.dim}, "
        f"n={args.samples}, whitening, "
        + (f"{args.resamples} bootstrap resamples" if args.resamples else "no evaluation")
    )
    what = "run_attacks + evaluate" if args.resamples else "run_attacks"
    print(f"vectorised JAX ({what}): {t_jax:.3f} s (best of {args.repeats})")
    print(f"NumPy loop baseline:                     {t_np:.3f} s")
    print(f"speed-up: {t_np / t_jax:.1f}x")
    aucs = [round(float(v["auc"]), 3) for v in ref.values()]
    print(f"baseline AUCs (random embeddings, ~0.5): {aucs}")


if __name__ == "__main__":
    main()
