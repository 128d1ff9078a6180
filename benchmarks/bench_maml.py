"""Benchmark: the MAML attacks on the paper's Tables III-IV grid, vectorised vs per-trial loop.

Grid: iterations 50/100/200 x data sizes 3/5/10/15/20 (the number of images reconstructed: a
``size``-way 1-shot set), 28x28 random images, MAML's 4-block conv net (32 channels, one inner
step). The attack is the library's (:func:`mtl_tracing.attacks.gradient_inversion.invert_trials`,
through :func:`mtl_tracing.experiments.maml_runtime.time_attack`): per cell and attack (query,
support), the per-attack time of the vectorised attack (``--trials`` targets in one compiled
call, mapped ``--trial-batch`` at a time: ``auto`` = the library's backend-aware default) and
of a per-trial loop of the same library attack called with one target, in the same run, both
warm (compiled before timing, ``block_until_ready``); the ratio loop / vectorised is printed.
The iteration count is traced, so each (size, attack, batch) compiles once for all counts.

Paper (Tables III-IV, PyTorch, one attack at a time, dual-core PC): query attack, 50 iterations,
size 3: 1.34 s; support attack: 3.54 s. The job ``mtl-tracing maml_runtime`` prints the same
per-attack times beside the paper's tables.

Run: ``python benchmarks/bench_maml.py [--quick] [--trials 256] [--loop-trials 4]`` (the review
target on a GPU: ``--quick --trials 256``, ratio >= 20x at sizes 3 and 5).
"""

from __future__ import annotations

import argparse
import json
import platform

import jax

from mtl_tracing.experiments.maml_runtime import (
    ITERATIONS,
    PAPER,
    SIZES,
    attack_inputs,
    time_attack,
)


def run(sizes, iterations, trials, loop_trials, channels, trial_batch="auto"):
    rows = []
    for size in sizes:
        inputs = attack_inputs(size, trials, channels, seed=size)
        for kind in ("query", "support"):
            kw = {"kind": kind}
            # compile: the vectorised program and the one-target program
            compile_s = time_attack(*inputs, iterations=1, n=trials, trial_batch=trial_batch, **kw)
            compile_s += time_attack(*inputs, iterations=1, n=1, **kw)
            for it in iterations:
                vec = time_attack(*inputs, iterations=it, n=trials, trial_batch=trial_batch, **kw)
                vec /= trials
                loop = sum(
                    time_attack(*inputs, iterations=it, n=1, **kw) for _ in range(loop_trials)
                )
                loop /= loop_trials
                paper = (
                    PAPER[kind][it][SIZES.index(size)]
                    if size in SIZES and it in PAPER[kind]
                    else None
                )
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
                    f"loop {loop:8.4f} s/attack  loop/vec x{loop / vec:5.1f}  paper {paper} s",
                    flush=True,
                )
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="sizes 3, 5 and 50 iterations only")
    p.add_argument("--sizes", default=None, help="comma-separated sizes (default: the grid's)")
    p.add_argument("--trials", type=int, default=8, help="targets per vectorised call")
    p.add_argument("--trial-batch", default="auto", help="attacks mapped at once (auto or an int)")
    p.add_argument("--loop-trials", type=int, default=2, help="one-target calls timed in the loop")
    p.add_argument("--channels", type=int, default=32, help="conv filters (MAML: 32 or 64)")
    p.add_argument("--json", default=None, help="write the rows here")
    a = p.parse_args(argv)
    sizes = (3, 5) if a.quick else SIZES
    if a.sizes:
        sizes = tuple(int(s) for s in a.sizes.split(","))
    iterations = (50,) if a.quick else ITERATIONS
    batch = a.trial_batch if a.trial_batch == "auto" else int(a.trial_batch)
    rows = run(sizes, iterations, a.trials, a.loop_trials, a.channels, batch)
    meta = {
        "machine": platform.platform(),
        "processor": platform.processor(),
        "devices": [str(d) for d in jax.devices()],
        "trials": a.trials,
        "trial_batch": a.trial_batch,
        "loop_trials": a.loop_trials,
        "channels": a.channels,
    }
    ratios = [r["speedup"] for r in rows]
    print(f"loop / vectorised: {min(ratios):.1f}x - {max(ratios):.1f}x over {len(rows)} cells")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": rows, "meta": meta}, f, indent=1)
    # The script checks its own output: every cell measured, every time positive.
    assert len(rows) == 2 * len(sizes) * len(iterations)
    assert all(r["vectorised_s"] > 0 and r["loop_s"] > 0 for r in rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
