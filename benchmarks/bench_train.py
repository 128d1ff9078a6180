"""Benchmark: multitask training (Algorithm 3) as one vmapped scan, versus R sequential runs.

Times ``train.train(key, data, config, runs=R)`` (R runs vmapped inside one jitted scan) for
R in ``--runs`` at the default synthetic config (T = 64 IN tasks, d = 64, m = 16, N = 16,
hidden 512, task batch 16), and the baseline of the same R runs done one after another
(``runs=1`` in a Python loop, the same compiled program). Prints optimizer steps per second
(one step = one task minibatch of one run) and the ratio.

Run: ``.venv/bin/python benchmarks/bench_train.py [--epochs 50] [--runs 1,2,4,8]``.
"""

from __future__ import annotations

import argparse
import os

import jax
from _timing import best_time

from mtl_tracing.data import synthetic
from mtl_tracing.victims import mtl as train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--runs", default="1,2,4,8", help="comma-separated R values")
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    data_cfg = synthetic.SyntheticConfig()
    cfg = train.TrainConfig(epochs=args.epochs, warm_start_epochs=min(5, args.epochs))
    data = synthetic.generate(jax.random.key(0), data_cfg)
    steps_per_run = args.epochs * train.steps_per_epoch(data_cfg.tasks, cfg.task_batch)
    key = jax.random.key(1)
    print(f"machine: {os.cpu_count()} CPUs, jax {jax.__version__}, {jax.devices()[0].platform}")
    print(f"config: {data_cfg}, epochs {args.epochs}, {steps_per_run} steps per run")

    def one_run():
        return train.train(key, data, cfg, runs=1).params

    t1 = best_time(one_run, args.repeats)
    print(f"\n{'R':>3} {'vmapped s':>10} {'steps/s':>9} {'loop s':>8} {'steps/s':>9} {'ratio':>6}")
    for r in (int(v) for v in args.runs.split(",")):
        tv = best_time(lambda r=r: train.train(key, data, cfg, runs=r).params, args.repeats)
        tl = r * t1  # R sequential runs of the compiled single-run program
        print(
            f"{r:>3} {tv:>10.2f} {r * steps_per_run / tv:>9.0f} {tl:>8.2f} "
            f"{r * steps_per_run / tl:>9.0f} {tl / tv:>5.2f}x"
        )


if __name__ == "__main__":
    main()
